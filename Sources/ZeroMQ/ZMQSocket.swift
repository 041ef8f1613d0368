import CBottleFitZMQ

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Bounds on one received multipart message, checked frame by frame before copying.
public struct ZMQReceiveLimits: Sendable, Equatable {
    /// The most frames a message may have.
    public var maxFrames: Int
    /// The most bytes all frames of a message may hold together.
    public var maxBytes: Int

    public init(maxFrames: Int = 16, maxBytes: Int = 8 << 20) {
        self.maxFrames = maxFrames
        self.maxBytes = maxBytes
    }

    /// 16 frames, 8 MiB: room for an envelope and a 4 MiB payload.
    public static let `default` = ZMQReceiveLimits()
}

/// A ZeroMQ socket, sending and receiving multipart messages of byte frames.
///
/// A socket belongs to one thread: this class is deliberately not `Sendable`. Create it on the
/// thread (or dedicated loop) that uses it, and reach other threads through `inproc://` sockets.
/// It keeps its context alive and closes itself (`zmq_close`) when released.
public final class ZMQSocket {
    /// The context this socket was made in; held so the context outlives the socket.
    public let context: ZMQContext
    /// The socket type it was created with.
    public let type: ZMQSocketType
    private var pointer: UnsafeMutableRawPointer?

    /// Creates a socket with a bounded `linger` (default 1000 ms), so closing never waits
    /// forever for a peer that has gone. The corresponding C function is `zmq_socket`.
    public init(_ context: ZMQContext, type: ZMQSocketType, linger: Int32 = 1000) throws(ZMQError) {
        guard let raw = zmq_socket(context.handle.pointer, type.rawValue) else {
            throw ZMQError.last("zmq_socket(\(type))")
        }
        var lingerValue = linger
        if zmq_setsockopt(raw, ZMQ_LINGER, &lingerValue, MemoryLayout<Int32>.size) != 0 {
            let error = ZMQError.last("zmq_setsockopt(ZMQ_LINGER, \(linger))")
            if zmq_close(raw) != 0 { assertionFailure("zmq_close failed after a failed setup") }
            throw error
        }
        self.context = context
        self.type = type
        self.pointer = raw
    }

    deinit {
        guard let pointer else { return }
        // zmq_close only fails with ENOTSOCK, which would be a bug in this type.
        if zmq_close(pointer) != 0 { assertionFailure("zmq_close: \(ZMQError.last("zmq_close"))") }
    }

    /// The open handle, or `ENOTSOCK` once closed.
    func handle(_ operation: @autoclosure () -> String) throws(ZMQError) -> UnsafeMutableRawPointer {
        guard let pointer else { throw ZMQError(errno: ENOTSOCK, operation: operation(), message: "socket is closed") }
        return pointer
    }

    /// Whether `close()` has been called.
    public var isClosed: Bool { pointer == nil }

    /// Closes the socket now rather than when it is released; pending messages get `linger` ms.
    /// The corresponding C function is `zmq_close`.
    public func close() throws(ZMQError) {
        guard let pointer else { return }
        self.pointer = nil
        if zmq_close(pointer) != 0 { throw ZMQError.last("zmq_close") }
    }

    // MARK: Options

    /// Sets an option. The corresponding C function is `zmq_setsockopt`.
    public func setOption<V>(_ option: ZMQSocketOption<V>, _ value: V) throws(ZMQError) {
        let socket = try handle("zmq_setsockopt(\(option.rawValue))")
        try value.withOptionBytes { (bytes) throws(ZMQError) in
            _ = try retryingOnInterrupt("zmq_setsockopt(\(option.rawValue))") {
                zmq_setsockopt(socket, option.rawValue, bytes.baseAddress, bytes.count)
            }
        }
    }

    /// Reads an option. The corresponding C function is `zmq_getsockopt`.
    public func option<V>(_ option: ZMQSocketOption<V>) throws(ZMQError) -> V {
        try V.readOption(option.rawValue, from: handle("zmq_getsockopt(\(option.rawValue))"))
    }

    // MARK: Endpoints

    /// Accepts connections on an endpoint such as `tcp://127.0.0.1:5555`, `tcp://127.0.0.1:*`,
    /// `ipc:///tmp/x` or `inproc://name`. The corresponding C function is `zmq_bind`.
    public func bind(_ endpoint: String) throws(ZMQError) {
        let socket = try handle("zmq_bind(\"\(endpoint)\")")
        _ = try retryingOnInterrupt("zmq_bind(\"\(endpoint)\")") { zmq_bind(socket, endpoint) }
    }

    /// Stops accepting on an endpoint bound earlier (for `*` ports pass `lastEndpoint`).
    /// The corresponding C function is `zmq_unbind`.
    public func unbind(_ endpoint: String) throws(ZMQError) {
        let socket = try handle("zmq_unbind(\"\(endpoint)\")")
        _ = try retryingOnInterrupt("zmq_unbind(\"\(endpoint)\")") { zmq_unbind(socket, endpoint) }
    }

    /// Connects to an endpoint; libzmq connects (and reconnects) in the background.
    /// The corresponding C function is `zmq_connect`.
    public func connect(_ endpoint: String) throws(ZMQError) {
        let socket = try handle("zmq_connect(\"\(endpoint)\")")
        _ = try retryingOnInterrupt("zmq_connect(\"\(endpoint)\")") { zmq_connect(socket, endpoint) }
    }

    /// Drops a connection made with `connect`. The corresponding C function is `zmq_disconnect`.
    public func disconnect(_ endpoint: String) throws(ZMQError) {
        let socket = try handle("zmq_disconnect(\"\(endpoint)\")")
        _ = try retryingOnInterrupt("zmq_disconnect(\"\(endpoint)\")") { zmq_disconnect(socket, endpoint) }
    }
}
