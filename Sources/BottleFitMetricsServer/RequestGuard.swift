import NIOCore
import NIOHTTP1
import Synchronization

/// Connections open at once across one server, shared by every connection's `RequestGuard`.
final class ConnectionCount: Sendable {
    private let open = Atomic<Int>(0)

    /// Counts a new connection; false when that makes more than `limit`.
    func enter(limit: Int) -> Bool { open.add(1, ordering: .relaxed).newValue <= limit }

    func leave() { open.subtract(1, ordering: .relaxed) }
}

/// The bounds of one connection, between NIO's HTTP/1.1 decoder and Hummingbird: what the
/// hand-written responder enforced before (docs/metrics.md), now around a well-kept parser.
///
/// - At most `maxConnections` open at once: the extra ones are answered 503 and closed.
/// - A request head must arrive within `headTimeout` (408), fit in `maxHeadBytes` (the decoder's
///   limit, 431) and be HTTP/1.x (505) with exactly one `Host` in HTTP/1.1 (400); whatever the
///   decoder refuses is answered with the closest status (400, 431, 501) instead of a bare close.
/// - One request per connection: the answer carries `Connection: close`; once it is written
///   the write side is shut and unread input is read and dropped for up to `drainTimeout`, so
///   the close does not reset the connection under the answer. An answer not written within
///   `writeTimeout` (a peer that does not read) loses its connection.
final class RequestGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    struct Settings: Sendable {
        var limits: MetricsServer.Limits
        var connections: ConnectionCount
        /// Counts an answer by status code (the endpoint's own metrics).
        var record: @Sendable (Int) -> Void
    }

    private enum Phase {
        /// Nothing decoded yet.
        case waitingForHead
        /// The request went on to Hummingbird; its body parts follow it.
        case forwarding
        /// The request (and its body) went on; anything after it is dropped.
        case requestDone
        /// Answered here without Hummingbird; all input is dropped.
        case refused
    }

    private let settings: Settings
    private var phase = Phase.waitingForHead
    private var answerStarted = false
    private var answerWritten = false
    private var inputClosed = false
    private var counted = false
    private var timers: [Scheduled<Void>] = []

    init(_ settings: Settings) { self.settings = settings }

    func handlerAdded(context: ChannelHandlerContext) {
        counted = true
        guard settings.connections.enter(limit: settings.limits.maxConnections) else {
            refuse(context, .serviceUnavailable, "too many connections\n")
            return
        }
        schedule(context, after: settings.limits.headTimeout) { guard_, context in
            guard guard_.phase == .waitingForHead, !guard_.answerStarted else { return }
            guard_.refuse(context, .requestTimeout, "the request head did not arrive in time\n")
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        for timer in timers { timer.cancel() }
        timers.removeAll()
        if counted { settings.connections.leave() }
        counted = false
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        switch phase {
        case .waitingForHead:
            guard case .head(let head) = part else { return }
            if let (status, reason) = Self.problem(with: head) {
                refuse(context, status, reason)
                return
            }
            phase = .forwarding
            context.fireChannelRead(data)
        case .forwarding:
            if case .end = part { phase = .requestDone }
            context.fireChannelRead(data)
        case .requestDone, .refused:
            return  // pipelined requests are not answered: one request per connection
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard !answerStarted else { return }  // the answer is on its way; the drain or write deadline closes
        if let parse = error as? HTTPParserError {
            let (status, reason) = Self.status(for: parse)
            refuse(context, status, reason)
        } else {
            context.close(promise: nil)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            // The server is stopping: a connection still waiting for its head closes now; one
            // being answered closes once the answer is out (its drain is bounded anyway).
            if phase == .waitingForHead && !answerStarted { context.close(promise: nil) }
            return
        }
        if case .inputClosed? = event as? ChannelEvent {
            inputClosed = true
            // The peer has sent all it will: once the answer is out there is nothing left to
            // drain; a peer that closed before sending a head gets no answer.
            if answerWritten || (phase == .waitingForHead && !answerStarted) { context.close(promise: nil) }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(var head):
            head.headers.replaceOrAdd(name: "connection", value: "close")
            startAnswer(context, status: head.status)
            context.write(wrapOutboundOut(.head(head)), promise: promise)
        case .body:
            context.write(data, promise: promise)
        case .end:
            let written = context.eventLoop.makePromise(of: Void.self)
            written.futureResult.cascade(to: promise)
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            written.futureResult.whenComplete { _ in
                let (guard_, context) = bound.value
                guard_.answerDone(context)
            }
            context.write(data, promise: written)
        }
    }

    // MARK: Answers

    /// Answers with `status` here (Hummingbird never sees the request) and drops all further input.
    private func refuse(_ context: ChannelHandlerContext, _ status: HTTPResponseStatus, _ reason: String) {
        phase = .refused
        guard !answerStarted else { return }
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "text/plain; charset=utf-8")
        headers.add(name: "content-length", value: "\(reason.utf8.count)")
        write(context: context, data: wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        write(context: context, data: wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: reason)))), promise: nil)
        write(context: context, data: wrapOutboundOut(.end(nil)), promise: nil)
        context.flush()
    }

    private func startAnswer(_ context: ChannelHandlerContext, status: HTTPResponseStatus) {
        guard !answerStarted else { return }
        answerStarted = true
        settings.record(Int(status.code))
        schedule(context, after: settings.limits.writeTimeout) { guard_, context in
            if !guard_.answerWritten { context.close(promise: nil) }
        }
    }

    /// The answer is written (or failed): shut the write side and drain for a bounded time.
    private func answerDone(_ context: ChannelHandlerContext) {
        guard !answerWritten else { return }
        answerWritten = true
        guard context.channel.isActive, !inputClosed else {
            context.close(promise: nil)
            return
        }
        context.close(mode: .output, promise: nil)
        schedule(context, after: settings.limits.drainTimeout) { _, context in context.close(promise: nil) }
    }

    private func schedule(_ context: ChannelHandlerContext, after seconds: Double, _ body: @escaping (RequestGuard, ChannelHandlerContext) -> Void) {
        let bound = NIOLoopBound((self, context, body), eventLoop: context.eventLoop)
        timers.append(context.eventLoop.scheduleTask(in: .milliseconds(Int64(seconds * 1000))) {
            let (guard_, context, body) = bound.value
            body(guard_, context)
        })
    }

    // MARK: Rules

    /// What the decoder accepted but this endpoint does not: another HTTP major version, and an
    /// HTTP/1.1 request without exactly one `Host` (RFC 9112 §3.2).
    static func problem(with head: HTTPRequestHead) -> (HTTPResponseStatus, String)? {
        guard head.version.major == 1 else {
            return (.httpVersionNotSupported, "HTTP/\(head.version.major).\(head.version.minor) is not supported; use HTTP/1.1\n")
        }
        if head.version.minor >= 1, head.headers["host"].count != 1 {
            return (.badRequest, "an HTTP/1.1 request needs exactly one Host header\n")
        }
        return nil
    }

    /// The answer to what NIO's decoder refused.
    static func status(for error: HTTPParserError) -> (HTTPResponseStatus, String) {
        switch error {
        case .headerOverflow: (.requestHeaderFieldsTooLarge, "the request head is too large\n")
        case .invalidMethod: (.notImplemented, "that method is not implemented\n")
        // llhttp refuses HTTP/2.0 and later and a malformed version alike: both are 505 here.
        case .invalidVersion: (.httpVersionNotSupported, "only HTTP/1.0 and HTTP/1.1 are supported\n")
        default: (.badRequest, "malformed request: \(error)\n")
        }
    }
}
