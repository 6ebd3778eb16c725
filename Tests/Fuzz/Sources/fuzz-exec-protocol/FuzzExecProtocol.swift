import Foundation
import FuzzSupport
import TallyCore

// Lines an exec plugin writes on stdout: each is decoded as a JSON-RPC message, and a result
// as each reply type Tally reads.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzExecProtocol(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let data = Fuzz.data(bytes, count)
    for line in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true) {
        guard let message = try? ExecProtocol.decodeMessage(Data(line)) else { continue }
        switch message {
        case .reply(_, .success(let value)):
            _ = try? ExecProtocol.decodeReply(value, as: ExecProtocol.Description.self)
            _ = try? ExecProtocol.decodeReply(value, as: ExecProtocol.Generation.self)
            _ = try? ExecProtocol.decodeReply(value, as: ExecProtocol.FineTuneResult.self)
            _ = try? ExecProtocol.decodeReply(value, as: ExecProtocol.OpenedArtifact.self)
            _ = try? ExecProtocol.decodeReply(value, as: ExecProtocol.Score.self)
            _ = (try? ExecProtocol.decodeReply(value, as: ExecProtocol.EmbeddingResult.self))?.problem(texts: 2)
        case .notification(_, let params):
            _ = try? ExecProtocol.decodeReply(.object(params), as: ExecProtocol.ProgressParams.self, root: "params")
        case .reply(_, .failure(let error)), .unidentifiedError(let error):
            _ = error.description
        }
    }
    return 0
}

/// The entry point of a debug build (see `Fuzz.run`).
@_cdecl("fuzz_exec_protocol_main")
public func fuzzExecProtocolMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    Fuzz.run(argc, argv, fuzzExecProtocol)
}
