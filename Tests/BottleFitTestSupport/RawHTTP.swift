import Foundation

/// A plain HTTP/1.1 client over TCP to 127.0.0.1, bounded in time: sends bytes exactly as
/// given (well-formed requests or garbage), reads until the server closes, and parses the
/// answer strictly. What a scraper does; shared by the metrics server and pipeline tests.
public enum RawHTTP {
    public struct Response: Sendable, CustomStringConvertible {
        public var status: Int
        /// Header names lowercased.
        public var headers: [String: String]
        public var body: String
        public var description: String { "\(status) \(headers) \(body.prefix(200))" }
    }

    /// Connects to 127.0.0.1:`port` with a receive timeout of `timeoutSeconds`; the
    /// descriptor, or -1.
    public static func connect(port: UInt16, timeoutSeconds: Int = 10) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return -1 }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if rc != 0 {
            close(fd)
            return -1
        }
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    /// Sends all of `bytes` (stops early if the peer has gone).
    public static func send(_ fd: Int32, _ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            offset += n
        }
    }

    /// Everything until EOF (or the receive timeout).
    public static func readAll(_ fd: Int32) -> [UInt8] {
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            out += chunk[0..<n]
        }
        return out
    }

    /// The status code, headers and body of an HTTP/1.1 answer; nil unless the status line
    /// and every header line are well formed.
    public static func parse(_ bytes: [UInt8]) -> Response? {
        let text = String(decoding: bytes, as: UTF8.self)
        guard let split = text.range(of: "\r\n\r\n") else { return nil }
        let lines = text[..<split.lowerBound].components(separatedBy: "\r\n")
        let statusLine = lines[0].split(separator: " ")
        guard statusLine.count >= 2, statusLine[0] == "HTTP/1.1", let code = Int(statusLine[1]) else { return nil }
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { return nil }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return Response(status: code, headers: headers, body: String(text[split.upperBound...]))
    }

    /// One exchange on a fresh connection; with `halfClose` the client shuts its sending side
    /// after the request, so a server waiting for the rest of a truncated request sees EOF.
    public static func exchange(port: UInt16, _ request: [UInt8], halfClose: Bool = false) -> Response? {
        let fd = connect(port: port)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        send(fd, request)
        if halfClose { shutdown(fd, Int32(SHUT_WR)) }
        return parse(readAll(fd))
    }

    /// `method path` with Host and Accept headers.
    public static func get(port: UInt16, _ path: String, method: String = "GET") -> Response? {
        exchange(port: port, Array("\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nAccept: text/plain\r\n\r\n".utf8))
    }
}
