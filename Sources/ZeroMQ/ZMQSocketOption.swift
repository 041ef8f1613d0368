import CBottleFitZMQ

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A value that can be written with `zmq_setsockopt` and read with `zmq_getsockopt`.
///
/// Conforming types are the C option types libzmq uses: `int` (`Int32`, or `Bool` as 0/1),
/// `int64_t` (`Int64`), binary data (`[UInt8]`) and character strings (`String`).
public protocol ZMQOptionValue {
    /// Calls `body` with the bytes `zmq_setsockopt` expects for this value.
    func withOptionBytes<R>(_ body: (UnsafeRawBufferPointer) throws(ZMQError) -> R) throws(ZMQError) -> R
    /// Reads the option with `zmq_getsockopt`.
    static func readOption(_ name: Int32, from socket: UnsafeMutableRawPointer) throws(ZMQError) -> Self
}

/// A typed socket option, the `option_name` of `zmq_setsockopt`/`zmq_getsockopt` with its value type.
///
/// Options are set where a socket is made, in one place, so that changing how every hop is
/// configured (for example turning on CURVE) is one change.
public struct ZMQSocketOption<Value: ZMQOptionValue>: RawRepresentable, Hashable, Sendable {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }
}

extension ZMQSocketOption where Value == Int32 {
    /// `ZMQ_LINGER`: how long `zmq_close` keeps unsent messages, in ms (-1 forever, 0 drop).
    public static var linger: Self { Self(rawValue: ZMQ_LINGER) }
    /// `ZMQ_SNDHWM`: outbound queue limit in messages per peer (0 unlimited).
    public static var sendHighWaterMark: Self { Self(rawValue: ZMQ_SNDHWM) }
    /// `ZMQ_RCVHWM`: inbound queue limit in messages per peer (0 unlimited).
    public static var receiveHighWaterMark: Self { Self(rawValue: ZMQ_RCVHWM) }
    /// `ZMQ_RCVTIMEO`: how long a blocking receive waits before failing with `EAGAIN`, in ms (-1 forever).
    public static var receiveTimeout: Self { Self(rawValue: ZMQ_RCVTIMEO) }
    /// `ZMQ_SNDTIMEO`: how long a blocking send waits before failing with `EAGAIN`, in ms (-1 forever).
    public static var sendTimeout: Self { Self(rawValue: ZMQ_SNDTIMEO) }
    /// `ZMQ_HEARTBEAT_IVL`: interval of ZMTP PING frames on each connection, in ms (0 off).
    public static var heartbeatInterval: Self { Self(rawValue: ZMQ_HEARTBEAT_IVL) }
    /// `ZMQ_HEARTBEAT_TTL`: how long the peer should wait for our next PING before closing, in ms.
    public static var heartbeatTTL: Self { Self(rawValue: ZMQ_HEARTBEAT_TTL) }
    /// `ZMQ_HEARTBEAT_TIMEOUT`: how long to wait for any traffic after a PING before closing, in ms.
    public static var heartbeatTimeout: Self { Self(rawValue: ZMQ_HEARTBEAT_TIMEOUT) }
    /// `ZMQ_RECONNECT_IVL`: first delay before reconnecting a dropped connection, in ms.
    public static var reconnectInterval: Self { Self(rawValue: ZMQ_RECONNECT_IVL) }
    /// `ZMQ_RECONNECT_IVL_MAX`: cap of the exponential reconnect back-off, in ms (0: no back-off).
    public static var reconnectIntervalMax: Self { Self(rawValue: ZMQ_RECONNECT_IVL_MAX) }
    /// `ZMQ_HANDSHAKE_IVL`: how long a new connection may take to complete the ZMTP handshake, in ms.
    public static var handshakeInterval: Self { Self(rawValue: ZMQ_HANDSHAKE_IVL) }
    /// `ZMQ_TYPE` (read only): the socket type.
    public static var type: Self { Self(rawValue: ZMQ_TYPE) }
    /// `ZMQ_EVENTS` (read only): `ZMQ_POLLIN`/`ZMQ_POLLOUT` bits of what can be done without blocking.
    public static var events: Self { Self(rawValue: ZMQ_EVENTS) }
}

extension ZMQSocketOption where Value == Int64 {
    /// `ZMQ_MAXMSGSIZE`: a peer sending a larger message is disconnected, in bytes (-1 unlimited).
    /// libzmq checks it before allocating, so it is the first guard against a huge message.
    public static var maxMessageSize: Self { Self(rawValue: ZMQ_MAXMSGSIZE) }
}

extension ZMQSocketOption where Value == Bool {
    /// `ZMQ_ROUTER_MANDATORY` (write only): a ROUTER send to an unknown routing id fails with
    /// `EHOSTUNREACH` instead of being dropped silently.
    public static var routerMandatory: Self { Self(rawValue: ZMQ_ROUTER_MANDATORY) }
    /// `ZMQ_IMMEDIATE`: queue messages only to completed connections, so a DEALER whose peer is
    /// down blocks (or says "would block") instead of queueing for a peer that may never come.
    public static var immediate: Self { Self(rawValue: ZMQ_IMMEDIATE) }
    /// `ZMQ_CURVE_SERVER`: this socket is the CURVE server (needs `curveSecretKey`).
    public static var curveServer: Self { Self(rawValue: ZMQ_CURVE_SERVER) }
    /// `ZMQ_RCVMORE` (read only): the last frame received is followed by more frames of the same message.
    public static var receiveMore: Self { Self(rawValue: ZMQ_RCVMORE) }
}

extension ZMQSocketOption where Value == [UInt8] {
    /// `ZMQ_ROUTING_ID`: the id a ROUTER peer sees for this socket (1 to 255 bytes, not starting with 0).
    public static var routingID: Self { Self(rawValue: ZMQ_ROUTING_ID) }
    /// `ZMQ_SUBSCRIBE` (write only): a SUB socket receives messages whose first frame starts with this prefix.
    public static var subscribe: Self { Self(rawValue: ZMQ_SUBSCRIBE) }
    /// `ZMQ_CONNECT_ROUTING_ID` (write only): the id a ROUTER or STREAM socket gives the
    /// connection made by its next `connect`, so it can address that peer at once.
    public static var connectRoutingID: Self { Self(rawValue: ZMQ_CONNECT_ROUTING_ID) }
    /// `ZMQ_UNSUBSCRIBE` (write only): removes one earlier `subscribe` of the same prefix.
    public static var unsubscribe: Self { Self(rawValue: ZMQ_UNSUBSCRIBE) }
}

extension ZMQSocketOption where Value == String {
    /// `ZMQ_CURVE_PUBLICKEY` (write only here): this socket's long-term public key, 40 Z85 characters.
    public static var curvePublicKey: Self { Self(rawValue: ZMQ_CURVE_PUBLICKEY) }
    /// `ZMQ_CURVE_SECRETKEY` (write only here): this socket's long-term secret key, 40 Z85 characters.
    public static var curveSecretKey: Self { Self(rawValue: ZMQ_CURVE_SECRETKEY) }
    /// `ZMQ_CURVE_SERVERKEY` (write only here): on a client, the server's public key, 40 Z85 characters.
    public static var curveServerKey: Self { Self(rawValue: ZMQ_CURVE_SERVERKEY) }
    /// `ZMQ_ZAP_DOMAIN`: the authentication domain passed to a ZAP handler (key allow-lists).
    public static var zapDomain: Self { Self(rawValue: ZMQ_ZAP_DOMAIN) }
    /// `ZMQ_LAST_ENDPOINT` (read only): the endpoint last bound, with the port chosen for `tcp://host:*`.
    public static var lastEndpoint: Self { Self(rawValue: ZMQ_LAST_ENDPOINT) }
}

// MARK: - Value conformances

/// Reads a fixed-size scalar option. The corresponding C function is `zmq_getsockopt`.
private func readScalar<T: FixedWidthInteger>(
    _ name: Int32, from socket: UnsafeMutableRawPointer, as: T.Type
) throws(ZMQError) -> T {
    var value = T.zero
    var size = MemoryLayout<T>.size
    if zmq_getsockopt(socket, name, &value, &size) != 0 { throw ZMQError.last("zmq_getsockopt(\(name))") }
    guard size == MemoryLayout<T>.size else {
        throw ZMQError(errno: EINVAL, operation: "zmq_getsockopt(\(name))", message: "unexpected option size \(size)")
    }
    return value
}

/// Reads a variable-size option into a bounded buffer (255 bytes is libzmq's largest routing id;
/// endpoints can be longer). The corresponding C function is `zmq_getsockopt`.
private func readBytes(_ name: Int32, from socket: UnsafeMutableRawPointer) throws(ZMQError) -> [UInt8] {
    var buffer = [UInt8](repeating: 0, count: 1024)
    var size = buffer.count
    if zmq_getsockopt(socket, name, &buffer, &size) != 0 { throw ZMQError.last("zmq_getsockopt(\(name))") }
    return Array(buffer.prefix(size))
}

extension Int32: ZMQOptionValue {
    public func withOptionBytes<R>(_ body: (UnsafeRawBufferPointer) throws(ZMQError) -> R) throws(ZMQError) -> R {
        var value = self
        return try withUnsafeBytes(of: &value) { (raw) throws(ZMQError) -> R in try body(raw) }
    }
    public static func readOption(_ name: Int32, from socket: UnsafeMutableRawPointer) throws(ZMQError) -> Int32 {
        try readScalar(name, from: socket, as: Int32.self)
    }
}

extension Int64: ZMQOptionValue {
    public func withOptionBytes<R>(_ body: (UnsafeRawBufferPointer) throws(ZMQError) -> R) throws(ZMQError) -> R {
        var value = self
        return try withUnsafeBytes(of: &value) { (raw) throws(ZMQError) -> R in try body(raw) }
    }
    public static func readOption(_ name: Int32, from socket: UnsafeMutableRawPointer) throws(ZMQError) -> Int64 {
        try readScalar(name, from: socket, as: Int64.self)
    }
}

extension Bool: ZMQOptionValue {
    public func withOptionBytes<R>(_ body: (UnsafeRawBufferPointer) throws(ZMQError) -> R) throws(ZMQError) -> R {
        try Int32(self ? 1 : 0).withOptionBytes(body)
    }
    public static func readOption(_ name: Int32, from socket: UnsafeMutableRawPointer) throws(ZMQError) -> Bool {
        try readScalar(name, from: socket, as: Int32.self) != 0
    }
}

extension Array: ZMQOptionValue where Element == UInt8 {
    public func withOptionBytes<R>(_ body: (UnsafeRawBufferPointer) throws(ZMQError) -> R) throws(ZMQError) -> R {
        // Array.withUnsafeBytes rethrows untyped errors; carry the typed one out in a Result.
        let result = withUnsafeBytes { raw in Result { () throws(ZMQError) -> R in try body(raw) } }
        return try result.get()
    }
    public static func readOption(_ name: Int32, from socket: UnsafeMutableRawPointer) throws(ZMQError) -> [UInt8] {
        try readBytes(name, from: socket)
    }
}

extension String: ZMQOptionValue {
    /// The UTF-8 bytes without a terminating NUL; libzmq takes the length from the size argument.
    public func withOptionBytes<R>(_ body: (UnsafeRawBufferPointer) throws(ZMQError) -> R) throws(ZMQError) -> R {
        try Array(utf8).withOptionBytes(body)
    }
    /// String options come back NUL-terminated; the terminator is dropped.
    public static func readOption(_ name: Int32, from socket: UnsafeMutableRawPointer) throws(ZMQError) -> String {
        var bytes = try readBytes(name, from: socket)
        if let nul = bytes.firstIndex(of: 0) { bytes.removeSubrange(nul...) }
        return String(decoding: bytes, as: UTF8.self)
    }
}
