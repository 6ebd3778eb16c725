#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import TallyCore
@testable import HostedAPI

/// Whether the `openssl` tool is available to play a TLS server.
private let opensslPath = ["/usr/bin/openssl", "/usr/local/bin/openssl", "/opt/homebrew/bin/openssl"].first { FileManager.default.isExecutableFile(atPath: $0) }

/// `openssl s_server` with a fresh self-signed certificate for 127.0.0.1.
private final class TLSServer {
    let port: UInt16
    let certificate: URL
    private let process: Process
    private let directory: URL

    init(openssl: String) throws {
        directory = try makeTemporaryDirectory()
        certificate = directory.appendingPathComponent("cert.pem")
        let key = directory.appendingPathComponent("key.pem")
        let make = Process()
        make.executableURL = URL(fileURLWithPath: openssl)
        make.arguments = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key.path, "-out", certificate.path,
                          "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
        make.standardOutput = FileHandle.nullDevice
        make.standardError = FileHandle.nullDevice
        try make.run()
        make.waitUntilExit()
        port = try Self.freePort()
        process = Process()
        process.executableURL = URL(fileURLWithPath: openssl)
        // -WWW serves files from the current directory: GET /cert.pem returns the certificate.
        process.arguments = ["s_server", "-accept", "\(port)", "-cert", certificate.path, "-key", key.path, "-WWW", "-quiet"]
        process.currentDirectoryURL = directory
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        try waitUntilListening()
    }

    func stop() {
        kill(process.processIdentifier, SIGKILL)  // s_server does not stop on SIGTERM
        process.waitUntilExit()
        try? FileManager.default.removeItem(at: directory)
    }

    private static func freePort() throws -> UInt16 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard ok else { throw POSIXError(.EADDRINUSE) }
        return UInt16(bigEndian: address.sin_port)
    }

    private func waitUntilListening() throws {
        for _ in 0..<100 {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = port.bigEndian
            address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
            }
            close(fd)
            if connected { return }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw POSIXError(.ECONNREFUSED)
    }
}

@Suite("TLS verification", .enabled(if: opensslPath != nil, "needs the openssl tool to run a TLS server"))
struct TLSTests {
    private func config(port: UInt16) -> BackendConfig {
        BackendConfig(
            name: "tls", plugin: "openai", model: "m", apiKeyEnv: "K", baseURL: "https://127.0.0.1:\(port)/v1",
            settings: ["max_retries": "0", "timeout_s": "5"], recipeDirectory: FileManager.default.temporaryDirectory)
    }

    @Test("An untrusted certificate fails at once, is not retried, and says why")
    func untrusted() async throws {
        let server = try TLSServer(openssl: try #require(opensslPath))
        defer { server.stop() }
        let events = EventLog()
        var settings = config(port: server.port).settings
        settings["max_retries"] = "3"
        let base = config(port: server.port)
        let retrying = BackendConfig(name: base.name, plugin: base.plugin, model: base.model, apiKeyEnv: base.apiKeyEnv, baseURL: base.baseURL, settings: settings, recipeDirectory: base.recipeDirectory)
        let backend = try await OpenAIPlugin(observer: { events.record($0) }).makeBackend(retrying, environment: ["K": "sk-tls-test"])
        let error = try await #require(throws: TallyError.self) { try await backend.generator.generate(GenerationRequest(messages: [.user("hi")])) }
        #expect(error.message.contains("failed TLS verification"), "\(error.message)")
        #expect(events.retries.isEmpty)
    }

    @Test("CURL_CA_BUNDLE makes a private CA trusted, as with curl")
    func trustedThroughBundle() async throws {
        let server = try TLSServer(openssl: try #require(opensslPath))
        defer { server.stop() }
        let expected = try String(contentsOf: server.certificate, encoding: .utf8)
        let url = try #require(URL(string: "https://127.0.0.1:\(server.port)/cert.pem"))
        let configuration = HTTPClient.Configuration(totalTimeout: 5, retry: RetryPolicy(maxRetries: 0))

        let trusting = HTTPClient(provider: "test", configuration: configuration, key: nil, environment: ["CURL_CA_BUNDLE": server.certificate.path])
        let body = try await trusting.send(HTTPRequest(method: "GET", url: url)) { response in
            (String(decoding: response.body, as: UTF8.self), nil)
        }
        #expect(body == expected)

        let strict = HTTPClient(provider: "test", configuration: configuration, key: nil)
        let error = try await #require(throws: TallyError.self) {
            try await strict.send(HTTPRequest(method: "GET", url: url)) { response in (response.status, nil) }
        }
        #expect(error.message.contains("failed TLS verification"))
    }
}
