/// An HTTP/1.x status the metrics endpoint answers with.
public struct HTTPStatus: Sendable, Equatable, CustomStringConvertible {
    public var code: Int
    public var reason: String

    public static let ok = HTTPStatus(code: 200, reason: "OK")
    public static let badRequest = HTTPStatus(code: 400, reason: "Bad Request")
    public static let notFound = HTTPStatus(code: 404, reason: "Not Found")
    public static let methodNotAllowed = HTTPStatus(code: 405, reason: "Method Not Allowed")
    public static let requestTimeout = HTTPStatus(code: 408, reason: "Request Timeout")
    public static let headersTooLarge = HTTPStatus(code: 431, reason: "Request Header Fields Too Large")
    public static let notImplemented = HTTPStatus(code: 501, reason: "Not Implemented")
    public static let serviceUnavailable = HTTPStatus(code: 503, reason: "Service Unavailable")
    public static let versionNotSupported = HTTPStatus(code: 505, reason: "HTTP Version Not Supported")

    public var description: String { "\(code) \(reason)" }
}

/// The head of an HTTP/1.x request (request line and header fields), read from untrusted bytes.
///
/// The endpoint serves one request per connection and closes it (`Connection: close`), so a
/// body is never read: the head is all that matters. Parsing follows RFC 9112 strictly where a
/// sloppy reading could be exploited and leniently where RFC 9112 allows (a bare LF ends a line,
/// empty lines before the request line are skipped).
public struct HTTPRequestHead: Sendable, Equatable {
    public var method: String
    /// The request target as sent (`/metrics?x=1`, or absolute-form `http://host/metrics`).
    public var target: String
    /// The target's path: without scheme and authority, without `?query`.
    public var path: String
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    public var minorVersion: Int
    public var headers: [(name: String, value: String)]

    public static func == (a: HTTPRequestHead, b: HTTPRequestHead) -> Bool {
        a.method == b.method && a.target == b.target && a.path == b.path && a.minorVersion == b.minorVersion
            && a.headers.map(\.name) == b.headers.map(\.name) && a.headers.map(\.value) == b.headers.map(\.value)
    }

    /// The value of the header `name` (case-insensitive), if it appears.
    public func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    /// What reading a prefix of a connection's bytes gave.
    public enum Parse: Sendable, Equatable {
        /// The head has not ended yet; read more.
        case incomplete
        case complete(HTTPRequestHead)
        /// Answer with `status` and close; `reason` is for the body and the debug log.
        case invalid(HTTPStatus, String)
    }

    /// Most header fields in one request.
    public static let maxHeaderCount = 64

    /// Reads the head at the start of `bytes`, which must not exceed `maxBytes` before it ends.
    public static func parse(_ bytes: [UInt8], maxBytes: Int = 8192) -> Parse {
        var start = 0
        // RFC 9112 2.2: ignore at least one empty line before the request line.
        while start < bytes.count, bytes[start] == cr || bytes[start] == lf { start += 1 }
        guard let end = endOfHead(bytes, from: start) else {
            return bytes.count > maxBytes ? .invalid(.headersTooLarge, "the request head exceeds \(maxBytes) bytes") : .incomplete
        }
        guard end <= maxBytes else { return .invalid(.headersTooLarge, "the request head exceeds \(maxBytes) bytes") }
        let lines = splitLines(bytes[start..<end])
        guard let requestLine = lines.first else { return .invalid(.badRequest, "empty request") }
        var head: HTTPRequestHead
        switch parseRequestLine(requestLine) {
        case .success(let h): head = h
        case .failure(let problem): return .invalid(problem.status, problem.reason)
        }
        let fields = lines.dropFirst()
        guard fields.count <= maxHeaderCount else { return .invalid(.headersTooLarge, "more than \(maxHeaderCount) header fields") }
        for line in fields {
            switch parseField(line) {
            case .success(let field): head.headers.append(field)
            case .failure(let problem): return .invalid(problem.status, problem.reason)
            }
        }
        // RFC 9112 3.2: an HTTP/1.1 request without exactly one Host is answered 400.
        let hosts = head.headers.filter { $0.name.lowercased() == "host" }.count
        if head.minorVersion >= 1 && hosts != 1 {
            return .invalid(.badRequest, hosts == 0 ? "an HTTP/1.1 request needs a Host header" : "more than one Host header")
        }
        let lengths = head.headers.filter { $0.name.lowercased() == "content-length" }.map(\.value)
        for value in lengths {
            // A list ("5, 5") or anything but digits is refused; so are differing values.
            guard !value.isEmpty, value.utf8.allSatisfy({ isDigit($0) }), value.utf8.count <= 18 else {
                return .invalid(.badRequest, "invalid Content-Length")
            }
        }
        if Set(lengths.map { Int($0) ?? -1 }).count > 1 { return .invalid(.badRequest, "conflicting Content-Length headers") }
        return .complete(head)
    }

    // MARK: Pieces

    private struct Problem: Error {
        var status: HTTPStatus
        var reason: String
        init(_ status: HTTPStatus, _ reason: String) {
            self.status = status
            self.reason = reason
        }
        init(_ reason: String) { self.init(.badRequest, reason) }
    }

    private static let cr = UInt8(ascii: "\r"), lf = UInt8(ascii: "\n"), sp = UInt8(ascii: " "), tab = UInt8(ascii: "\t")

    /// Index just past the blank line that ends the head (CRLF CRLF, or bare LFs), or nil.
    private static func endOfHead(_ bytes: [UInt8], from start: Int) -> Int? {
        var i = start
        var lineIsEmpty = true
        while i < bytes.count {
            let b = bytes[i]
            if b == lf {
                if lineIsEmpty && i > start { return i + 1 }
                lineIsEmpty = true
            } else if b != cr || i + 1 >= bytes.count || bytes[i + 1] != lf {
                lineIsEmpty = false
            }
            i += 1
        }
        return nil
    }

    /// The lines of the head without their terminators and without the final empty line.
    private static func splitLines(_ bytes: ArraySlice<UInt8>) -> [ArraySlice<UInt8>] {
        var lines: [ArraySlice<UInt8>] = []
        var lineStart = bytes.startIndex
        for i in bytes.indices where bytes[i] == lf {
            var end = i
            if end > lineStart, bytes[end - 1] == cr { end -= 1 }
            if end > lineStart { lines.append(bytes[lineStart..<end]) } else { break }
            lineStart = i + 1
        }
        return lines
    }

    /// RFC 9110 5.6.2 tchar.
    static func isTokenChar(_ c: UInt8) -> Bool {
        if isDigit(c) || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(c) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(c) { return true }
        return Array("!#$%&'*+-.^_`|~".utf8).contains(c)
    }

    private static func isDigit(_ c: UInt8) -> Bool { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c) }

    private static func parseRequestLine(_ line: ArraySlice<UInt8>) -> Result<HTTPRequestHead, Problem> {
        let parts = line.split(separator: sp, omittingEmptySubsequences: false)
        guard parts.count == 3 else { return .failure(Problem("the request line is not METHOD TARGET VERSION")) }
        let (method, target, version) = (parts[0], parts[1], parts[2])
        guard !method.isEmpty, method.allSatisfy(isTokenChar) else { return .failure(Problem("invalid method")) }
        let v = Array(version)
        guard v.count == 8, v.starts(with: Array("HTTP/".utf8)), isDigit(v[5]), v[6] == UInt8(ascii: "."), isDigit(v[7]) else {
            return .failure(Problem("invalid HTTP version"))
        }
        guard v[5] == UInt8(ascii: "1") else { return .failure(Problem(.versionNotSupported, "only HTTP/1.0 and HTTP/1.1 are served")) }
        // Visible ASCII only: no controls, no spaces, no raw UTF-8 (it must be percent-encoded).
        guard !target.isEmpty, target.allSatisfy({ $0 > 32 && $0 < 127 }) else { return .failure(Problem("invalid request target")) }
        let text = String(decoding: target, as: UTF8.self)
        func head(_ path: String) -> HTTPRequestHead {
            HTTPRequestHead(
                method: String(decoding: method, as: UTF8.self), target: text, path: path,
                minorVersion: Int(v[7] - UInt8(ascii: "0")), headers: [])
        }
        var path: Substring
        if text.hasPrefix("/") {
            path = text[...]
        } else if let scheme = ["http://", "https://"].first(where: { text.lowercased().hasPrefix($0) }) {
            // Absolute form: the path starts after the authority.
            let rest = text.dropFirst(scheme.count)
            guard let slash = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) else { return .success(head("/")) }
            path = rest[slash...]
            if path.hasPrefix("?") { path = "/" + path }
        } else {
            return .failure(Problem("the request target must be a path such as /metrics"))
        }
        if let q = path.firstIndex(of: "?") { path = path[..<q] }
        if let f = path.firstIndex(of: "#") { path = path[..<f] }
        return .success(head(String(path)))
    }

    private static func parseField(_ line: ArraySlice<UInt8>) -> Result<(name: String, value: String), Problem> {
        guard let first = line.first, first != sp, first != tab else {
            return .failure(Problem("obsolete line folding is not accepted"))
        }
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { return .failure(Problem("a header line without a colon")) }
        let name = line[line.startIndex..<colon]
        // RFC 9112 5.1: no whitespace between the name and the colon.
        guard !name.isEmpty, name.allSatisfy(isTokenChar) else { return .failure(Problem("invalid header name")) }
        var value = line[(colon + 1)...]
        while let c = value.first, c == sp || c == tab { value = value.dropFirst() }
        while let c = value.last, c == sp || c == tab { value = value.dropLast() }
        // Field values: visible characters, spaces, tabs and obs-text; never NUL, CR, LF or other controls.
        guard value.allSatisfy({ $0 == tab || $0 >= 32 && $0 != 127 }) else { return .failure(Problem("invalid header value")) }
        return .success((String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self)))
    }
}
