import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One response, serialised as HTTP/1.1 with `Connection: close`.
struct HTTPResponse {
    var status: HTTPStatus
    var contentType = "text/plain; charset=utf-8"
    var body: String
    /// A HEAD request: the headers (Content-Length of the body GET would get) without the body.
    var headOnly = false
    var extraHeaders: [(String, String)] = []

    var bytes: [UInt8] {
        let body = Array(self.body.utf8)
        var head = "HTTP/1.1 \(status.code) \(status.reason)\r\n"
        head += "Date: \(Self.httpDate())\r\n"
        head += "Content-Type: \(contentType)\r\n"
        head += "Content-Length: \(body.count)\r\n"
        head += "Cache-Control: no-store\r\n"
        for (name, value) in extraHeaders { head += "\(name): \(value)\r\n" }
        head += "Connection: close\r\n\r\n"
        return Array(head.utf8) + (headOnly ? [] : body)
    }

    /// RFC 9110's IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
    static func httpDate() -> String {
        var now = time(nil)
        var parts = tm()
        gmtime_r(&now, &parts)
        var buffer = [CChar](repeating: 0, count: 64)
        let n = strftime(&buffer, buffer.count, "%a, %d %b %Y %H:%M:%S GMT", &parts)
        return String(decoding: buffer.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// One accepted connection on the metrics thread: read a request head, write one answer, drain
/// what the peer still sends, close. Every state has a deadline, so a slow or silent peer costs
/// one slot for a few seconds at most. Owned by the metrics thread only.
final class HTTPConnection {
    enum State {
        case reading
        case writing(bytes: [UInt8], offset: Int, deadline: Double)
        case draining(deadline: Double, discarded: Int)
        case finished
    }

    let fd: Int32
    private let acceptedAt: Double
    private var buffer: [UInt8] = []
    private(set) var state = State.reading

    init(fd: Int32, acceptedAt: Double) {
        self.fd = fd
        self.acceptedAt = acceptedAt
    }

    var wantsWrite: Bool {
        if case .writing = state { return true }
        return false
    }

    var isFinished: Bool {
        if case .finished = state { return true }
        return false
    }

    /// Handles what `poll` reported for this connection.
    func service(revents: Int16, now: Double, limits: MetricsServer.Limits, respond: (HTTPRequestHead.Parse) -> HTTPResponse) {
        if revents & Int16(POLLNVAL) != 0 {
            state = .finished
            return
        }
        switch state {
        case .reading:
            readRequest(now: now, limits: limits, respond: respond)
        case .writing:
            flush(now: now, limits: limits)
        case .draining(let deadline, let discarded):
            drain(deadline: deadline, discarded: discarded)
        case .finished:
            break
        }
        if revents & Int16(POLLERR) != 0, !isFinished, !wantsWrite { state = .finished }
    }

    /// Deadlines: a head that takes too long is answered 408; a write or drain that takes too long ends.
    func checkTimeouts(now: Double, limits: MetricsServer.Limits, respond: (HTTPRequestHead.Parse) -> HTTPResponse) {
        switch state {
        case .reading where now - acceptedAt > limits.headTimeout:
            answer(respond(.incomplete), now: now, limits: limits)
        case .writing(_, _, let deadline) where now > deadline, .draining(let deadline, _) where now > deadline:
            state = .finished
        default:
            break
        }
    }

    /// Queues `response` and writes as much of it as the socket takes now.
    func answer(_ response: HTTPResponse, now: Double, limits: MetricsServer.Limits) {
        buffer = []
        state = .writing(bytes: response.bytes, offset: 0, deadline: now + limits.writeTimeout)
        flush(now: now, limits: limits)
    }

    func close() {
        closeDescriptor(fd)
    }

    private func readRequest(now: Double, limits: MetricsServer.Limits, respond: (HTTPRequestHead.Parse) -> HTTPResponse) {
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 {
                buffer.append(contentsOf: chunk[0..<n])
                // Enough to decide: a complete head, or more than the limit allows.
                if buffer.count > limits.maxHeadBytes { break }
                continue
            }
            if n == 0 {
                // The peer half-closed: answer what it sent, if anything.
                if buffer.isEmpty { state = .finished; return }
                let parsed = HTTPRequestHead.parse(buffer, maxBytes: limits.maxHeadBytes)
                let ended = HTTPRequestHead.Parse.invalid(.badRequest, "the connection ended inside the request head")
                answer(respond(parsed == .incomplete ? ended : parsed), now: now, limits: limits)
                return
            }
            if errno == EINTR { continue }
            if errno == EAGAIN || errno == EWOULDBLOCK { break }
            state = .finished  // ECONNRESET and friends
            return
        }
        let parsed = HTTPRequestHead.parse(buffer, maxBytes: limits.maxHeadBytes)
        if parsed != .incomplete { answer(respond(parsed), now: now, limits: limits) }
    }

    private func flush(now: Double, limits: MetricsServer.Limits) {
        guard case .writing(let bytes, var offset, let deadline) = state else { return }
        while offset < bytes.count {
            // MSG_NOSIGNAL: a peer that has gone must not kill the process with SIGPIPE.
            let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL)) }
            if n > 0 { offset += n; continue }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                state = .writing(bytes: bytes, offset: offset, deadline: deadline)
                return
            }
            state = .finished
            return
        }
        // All written: tell the peer we are done, then read until it closes (bounded).
        _ = shutdown(fd, Int32(SHUT_WR))
        state = .draining(deadline: now + limits.drainTimeout, discarded: 0)
    }

    private func drain(deadline: Double, discarded: Int) {
        var chunk = [UInt8](repeating: 0, count: 4096)
        var total = discarded
        while total < 1 << 20 {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 { total += n; continue }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                state = .draining(deadline: deadline, discarded: total)
                return
            }
            break  // EOF or an error: done
        }
        state = .finished
    }
}

/// The listening TCP socket, non-blocking, bound to a `MetricsAddress`.
struct ListeningSocket {
    let fd: Int32
    let bound: MetricsAddress

    /// The corresponding C functions are `getaddrinfo`, `socket`, `bind`, `listen` and `getsockname`.
    init(address: MetricsAddress) throws(MetricsServerError) {
        var hints = addrinfo()
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        hints.ai_family = AF_UNSPEC
        #if canImport(Glibc)
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #else
        hints.ai_socktype = SOCK_STREAM
        #endif
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(address.host, "\(address.port)", &hints, &list)
        guard rc == 0, let first = list else {
            throw .resolve("cannot resolve \(address.host): \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(list) }
        var lastError = "no address for \(address.host)"
        var candidate: UnsafeMutablePointer<addrinfo>? = first
        while let info = candidate {
            candidate = info.pointee.ai_next
            let fd = socket(info.pointee.ai_family, info.pointee.ai_socktype, info.pointee.ai_protocol)
            guard fd >= 0 else { lastError = "socket: \(String(cString: strerror(errno)))"; continue }
            var yes: Int32 = 1
            _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            guard bind(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 else {
                lastError = "cannot bind \(address): \(String(cString: strerror(errno)))"
                closeDescriptor(fd)
                continue
            }
            guard listen(fd, 64) == 0 else {
                lastError = "cannot listen on \(address): \(String(cString: strerror(errno)))"
                closeDescriptor(fd)
                continue
            }
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            self.fd = fd
            bound = Self.localAddress(fd) ?? address
            return
        }
        throw .socket(lastError)
    }

    func close() { closeDescriptor(fd) }

    /// The numeric address and port the kernel bound (the chosen port for port 0).
    private static func localAddress(_ fd: Int32) -> MetricsAddress? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let ok = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) == 0 }
        }
        guard ok else { return nil }
        var host = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        var port = [CChar](repeating: 0, count: Int(NI_MAXSERV))
        let rc = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                getnameinfo($0, length, &host, socklen_t(host.count), &port, socklen_t(port.count), NI_NUMERICHOST | NI_NUMERICSERV)
            }
        }
        func text(_ chars: [CChar]) -> String {
            String(decoding: chars.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        guard rc == 0, let p = UInt16(text(port)) else { return nil }
        return MetricsAddress(host: text(host), port: p)
    }
}

/// `close(2)`, named so it does not clash with the types' own `close()`.
func closeDescriptor(_ fd: Int32) {
    #if canImport(Glibc)
    _ = Glibc.close(fd)
    #else
    _ = Darwin.close(fd)
    #endif
}
