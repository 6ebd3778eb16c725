import Foundation
import Testing
import TallyCore

/// Error codes are open (a struct around a string) and errors keep their cause.
@Suite struct TallyErrorTests {
    struct Record: Codable, Equatable {
        let code: TallyError.Code
    }

    @Test func codesKeepTheirRawStrings() {
        let codes: [TallyError.Code] = [
            .invalidRecipe, .invalidData, .unknownName, .backend, .invalidModel, .budgetExceeded, .ledger, .io, .cancelled,
        ]
        #expect(codes.map(\.rawValue) == [
            "invalid-recipe", "invalid-data", "unknown-name", "backend", "invalid-model", "budget-exceeded", "ledger", "io",
            "cancelled",
        ])
        #expect(Set(codes).count == codes.count)
        #expect(TallyError.Code("backend") == .backend)
        #expect(TallyError.Code.budgetExceeded.description == "budget-exceeded")
    }

    @Test func aCodeFromARawStringRoundTripsThroughCodable() throws {
        let code = TallyError.Code("quota-exhausted")
        let data = try JSONEncoder().encode(Record(code: code))
        #expect(String(decoding: data, as: UTF8.self) == #"{"code":"quota-exhausted"}"#)
        #expect(try JSONDecoder().decode(Record.self, from: data) == Record(code: code))
        let known = try JSONEncoder().encode(Record(code: .ledger))
        #expect(try JSONDecoder().decode(Record.self, from: known).code == .ledger)
    }

    @Test func anUnknownCodeDecodes() throws {
        // Written by a newer Tally or a plugin with codes of its own.
        let decoded = try JSONDecoder().decode(Record.self, from: Data(#"{"code":"gpu-out-of-memory"}"#.utf8))
        #expect(decoded.code.rawValue == "gpu-out-of-memory")
        #expect(decoded.code != .backend)
        let matched = switch decoded.code {
        case .backend, .invalidModel: "known"
        default: "other"
        }
        #expect(matched == "other")
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(Record.self, from: Data(#"{"code":7}"#.utf8)) }
    }

    @Test func theUnderlyingErrorIsKept() throws {
        struct Cause: Error, Equatable { let status: Int }
        let error = TallyError(code: .backend, message: "the server refused the request", underlying: Cause(status: 429))
        #expect(try #require(error.underlyingError as? Cause) == Cause(status: 429))
        #expect(error.underlying == String(describing: Cause(status: 429)))
        #expect(error.description.contains("status: 429"))
        #expect(TallyError(code: .io, message: "disk full").underlyingError == nil)
    }
}
