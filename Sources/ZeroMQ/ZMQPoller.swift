import CBottleFitZMQ

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// What to wait for, or what happened, on a polled socket (`ZMQ_POLLIN`, `ZMQ_POLLOUT`, `ZMQ_POLLERR`).
public struct ZMQPollEvents: OptionSet, Hashable, Sendable {
    public let rawValue: Int16
    public init(rawValue: Int16) { self.rawValue = rawValue }

    /// At least one message can be received without blocking.
    public static let readable = ZMQPollEvents(rawValue: Int16(ZMQ_POLLIN))
    /// At least one message can be sent without blocking.
    public static let writable = ZMQPollEvents(rawValue: Int16(ZMQ_POLLOUT))
    /// An error condition (only reported for plain file descriptors).
    public static let error = ZMQPollEvents(rawValue: Int16(ZMQ_POLLERR))
}

/// Waits on several sockets at once, the loop primitive of a broker or worker.
///
/// Like its sockets it belongs to one thread. Run it on a dedicated thread with a bounded
/// timeout, never on Swift's cooperative pool, so the loop can notice shutdown promptly.
public final class ZMQPoller {
    private var sockets: [ZMQSocket] = []
    private var items: [zmq_pollitem_t] = []

    public init() {}

    /// Adds a socket to wait on and returns its index for `events(at:)`.
    @discardableResult
    public func add(_ socket: ZMQSocket, events: ZMQPollEvents = .readable) throws(ZMQError) -> Int {
        let handle = try socket.handle("zmq_poll")
        sockets.append(socket)
        items.append(zmq_pollitem_t(socket: handle, fd: 0, events: events.rawValue, revents: 0))
        return items.count - 1
    }

    /// The number of sockets added.
    public var count: Int { items.count }

    /// What was ready on socket `index` after the last `poll`.
    public func events(at index: Int) -> ZMQPollEvents { ZMQPollEvents(rawValue: items[index].revents) }

    /// What was ready on `socket` after the last `poll` (empty if it was not added).
    public func events(for socket: ZMQSocket) -> ZMQPollEvents {
        guard let index = sockets.firstIndex(where: { $0 === socket }) else { return [] }
        return events(at: index)
    }

    /// Waits until a socket is ready or `timeout` passes (`nil`: forever) and returns how many
    /// sockets are ready (0 on timeout). An interrupting signal (`EINTR`) restarts the wait for
    /// the time left. Fails with `ETERM` once the context is shut down.
    /// The corresponding C function is `zmq_poll`.
    public func poll(timeout: Duration?) throws(ZMQError) -> Int {
        for socket in sockets where socket.isClosed {
            throw ZMQError(errno: ENOTSOCK, operation: "zmq_poll", message: "a polled socket is closed")
        }
        let clock = ContinuousClock()
        let deadline = timeout.map { clock.now.advanced(by: $0) }
        while true {
            let milliseconds: Int
            if let deadline {
                let left = clock.now.duration(to: deadline)
                milliseconds = left <= .zero ? 0 : Self.roundedUpMilliseconds(left)
            } else {
                milliseconds = -1
            }
            let count = Int32(clamping: items.count)
            let rc = items.withUnsafeMutableBufferPointer { zmq_poll($0.baseAddress, count, milliseconds) }
            if rc >= 0 { return Int(rc) }
            let code = zmq_errno()
            if code == EINTR { continue }
            throw ZMQError(errno: code, operation: "zmq_poll")
        }
    }

    /// Rounds up, so a 0.5 ms timeout waits instead of spinning.
    private static func roundedUpMilliseconds(_ duration: Duration) -> Int {
        let (seconds, attoseconds) = duration.components
        let whole = seconds.multipliedReportingOverflow(by: 1000)
        if whole.overflow { return Int.max }
        let fraction = attoseconds / 1_000_000_000_000_000
        let remainder = attoseconds % 1_000_000_000_000_000
        return Int(clamping: whole.partialValue + fraction + (remainder > 0 ? 1 : 0))
    }
}
