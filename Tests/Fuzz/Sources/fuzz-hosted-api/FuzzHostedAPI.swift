import Foundation
import FuzzSupport
@testable import HostedAPI

// A hosted API's response body, decoded as each response type Tally reads (OpenAI chat
// completions, Anthropic messages, fine-tuning jobs, events, files), plus a Retry-After value.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHostedAPI(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let (head, body) = Fuzz.split(Fuzz.data(bytes, count))
    _ = parseRetryAfter(String(decoding: head, as: UTF8.self), now: Date(timeIntervalSince1970: 0))
    let response = HTTPResponse(status: 200, headers: ["content-type": "application/json"], body: body, httpVersion: "2", seconds: 0.1)
    _ = try? decodeJSON(ChatCompletionResponse.self, from: response)
    _ = try? decodeJSON(MessagesResponse.self, from: response)
    _ = try? decodeJSON(FineTuningJob.self, from: response)
    _ = try? decodeJSON(FineTuningJobList.self, from: response)
    _ = try? decodeJSON(FineTuningEventList.self, from: response)
    _ = try? decodeJSON(UploadedFile.self, from: response)
    return 0
}

/// The entry point of a debug build (see `Fuzz.run`).
@_cdecl("fuzz_hosted_api_main")
public func fuzzHostedAPIMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    Fuzz.run(argc, argv, fuzzHostedAPI)
}
