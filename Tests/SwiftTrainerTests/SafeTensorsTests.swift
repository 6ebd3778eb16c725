import Foundation
import Testing
import TallyCore
@testable import SwiftTrainer

/// safetensors reading, writing and the errors for malformed files.
struct SafeTensorsTests {
    func temporaryURL(_ name: String) -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("tally-st-\(UUID().uuidString)-\(name)")
    }

    /// Writes a file by hand: header JSON then raw bytes.
    func rawFile(header: String, data: [UInt8], declaredLength: UInt64? = nil) throws -> URL {
        let url = temporaryURL("raw.safetensors")
        var bytes = Data()
        var n = (declaredLength ?? UInt64(header.utf8.count)).littleEndian
        withUnsafeBytes(of: &n) { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: Array(header.utf8))
        bytes.append(contentsOf: data)
        try bytes.write(to: url)
        return url
    }

    @Test func writeThenReadRoundTrips() throws {
        let url = temporaryURL("rt.safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        let a = WeightTensor(shape: [2, 3], values: [1, -2, 3.5, 0, 1e-7, -1e7])
        let b = WeightTensor(shape: [1], values: [42])
        try SafeTensorsFile.write(["a": a, "b.bias": b], to: url)
        let file = try SafeTensorsFile(contentsOf: url)
        #expect(file.names == ["a", "b.bias"])
        #expect(try file.tensor("a").values == a.values)
        #expect(try file.tensor("a").shape == [2, 3])
        #expect(try file.tensor("b.bias").values == [42])
        #expect(file.metadata["format"] == "pt")
    }

    @Test func halfAndBrainFloatConvertToFloat32() throws {
        // F16: 1.0 = 0x3C00, -2.0 = 0xC000, 65504 = 0x7BFF, smallest subnormal 0x0001.
        // BF16: 1.0 = 0x3F80, -0.5 = 0xBF00.
        let header = #"{"h":{"dtype":"F16","shape":[4],"data_offsets":[0,8]},"b":{"dtype":"BF16","shape":[2],"data_offsets":[8,12]}}"#
        let data: [UInt8] = [0x00, 0x3C, 0x00, 0xC0, 0xFF, 0x7B, 0x01, 0x00, 0x80, 0x3F, 0x00, 0xBF]
        let url = try rawFile(header: header, data: data)
        defer { try? FileManager.default.removeItem(at: url) }
        let file = try SafeTensorsFile(contentsOf: url)
        #expect(try file.tensor("h").values == [1, -2, 65504, Float(5.9604645e-08)])
        #expect(try file.tensor("b").values == [1, -0.5])
    }

    @Test func truncatedDataIsAClearError() throws {
        let header = #"{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}"#
        let url = try rawFile(header: header, data: [UInt8](repeating: 0, count: 12))
        defer { try? FileManager.default.removeItem(at: url) }
        let error = try #require(throws: TallyError.self) { try SafeTensorsFile(contentsOf: url) }
        #expect(error.code == .invalidModel)
        #expect(error.message.contains("'w'"))
        #expect(error.message.contains("truncated"))
        #expect(error.location?.file == url.path)
    }

    @Test func shapeThatDisagreesWithOffsetsIsAClearError() throws {
        let header = #"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#
        let url = try rawFile(header: header, data: [UInt8](repeating: 0, count: 8))
        defer { try? FileManager.default.removeItem(at: url) }
        let error = try #require(throws: TallyError.self) { try SafeTensorsFile(contentsOf: url) }
        #expect(error.message.contains("[3]"))
    }

    @Test func headerLongerThanFileIsAClearError() throws {
        let url = try rawFile(header: "{}", data: [], declaredLength: 1000)
        defer { try? FileManager.default.removeItem(at: url) }
        let error = try #require(throws: TallyError.self) { try SafeTensorsFile(contentsOf: url) }
        #expect(error.message.contains("header"))
    }

    @Test func tinyFileAndGarbageAreClearErrors() throws {
        let url = temporaryURL("tiny.safetensors")
        try Data([1, 2, 3]).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        #expect(throws: TallyError.self) { try SafeTensorsFile(contentsOf: url) }
        let garbage = try rawFile(header: "not json", data: [])
        defer { try? FileManager.default.removeItem(at: garbage) }
        let error = try #require(throws: TallyError.self) { try SafeTensorsFile(contentsOf: garbage) }
        #expect(error.message.contains("JSON"))
    }

    @Test func missingFileNamesTheFile() throws {
        let url = temporaryURL("absent.safetensors")
        let error = try #require(throws: TallyError.self) { try SafeTensorsFile(contentsOf: url) }
        #expect(error.location?.file == url.path)
    }
}
