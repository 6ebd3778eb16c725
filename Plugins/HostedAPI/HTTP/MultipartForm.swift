import Foundation

/// A `multipart/form-data` body (RFC 7578), built in memory.
struct MultipartForm {
    let boundary: String
    private var body = Data()

    init(boundary: String = "tally-\(UUID().uuidString)") {
        self.boundary = boundary
    }

    /// The `Content-Type` header value announcing the boundary.
    var contentType: String { "multipart/form-data; boundary=\(boundary)" }

    /// Adds a plain text field.
    mutating func addField(_ name: String, _ value: String) {
        body.append(Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\"\r\n\r\n\(value)\r\n".utf8))
    }

    /// Adds a file part.
    mutating func addFile(_ name: String, filename: String, contentType: String, data: Data) {
        body.append(Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\"; filename=\"\(filename)\"\r\nContent-Type: \(contentType)\r\n\r\n".utf8))
        body.append(data)
        body.append(Data("\r\n".utf8))
    }

    /// The finished body, closing delimiter included.
    func encoded() -> Data {
        var result = body
        result.append(Data("--\(boundary)--\r\n".utf8))
        return result
    }
}
