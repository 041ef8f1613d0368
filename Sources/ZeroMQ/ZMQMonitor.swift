import CBottleFitZMQ

/// Connection events a socket monitor reports (`ZMQ_EVENT_*`), as a mask for `ZMQSocket.monitor`.
public struct ZMQMonitorEvents: OptionSet, Hashable, Sendable {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let connected = ZMQMonitorEvents(rawValue: UInt16(ZMQ_EVENT_CONNECTED))
    public static let accepted = ZMQMonitorEvents(rawValue: UInt16(ZMQ_EVENT_ACCEPTED))
    public static let disconnected = ZMQMonitorEvents(rawValue: UInt16(ZMQ_EVENT_DISCONNECTED))
    /// The security handshake completed (CURVE keys checked, ZAP said yes).
    public static let handshakeSucceeded = ZMQMonitorEvents(rawValue: UInt16(ZMQ_EVENT_HANDSHAKE_SUCCEEDED))
    /// The handshake failed without detail (e.g. the peer closed during it).
    public static let handshakeFailedNoDetail = ZMQMonitorEvents(rawValue: UInt16(ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL))
    /// The handshake broke the protocol (e.g. one side CURVE, the other not).
    public static let handshakeFailedProtocol = ZMQMonitorEvents(rawValue: UInt16(ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL))
    /// The ZAP handler refused the peer (its status code is the event value).
    public static let handshakeFailedAuth = ZMQMonitorEvents(rawValue: UInt16(ZMQ_EVENT_HANDSHAKE_FAILED_AUTH))
    /// Any failed handshake.
    public static let handshakeFailed: ZMQMonitorEvents = [.handshakeFailedNoDetail, .handshakeFailedProtocol, .handshakeFailedAuth]
}

/// One event read from a monitor's PAIR socket: what happened, its value and the endpoint.
public struct ZMQMonitorEvent: Sendable, Equatable {
    public var event: ZMQMonitorEvents
    /// The event's value: a file descriptor, an errno, or for `handshakeFailedAuth` the ZAP status code.
    public var value: UInt32
    public var endpoint: String

    /// Decodes the two frames libzmq sends per event (a 16-bit event and 32-bit value, native
    /// byte order; then the endpoint); nil for any other layout.
    public init?(frames: [[UInt8]]) {
        guard frames.count == 2, frames[0].count == 6 else { return nil }
        let f = frames[0]
        event = ZMQMonitorEvents(rawValue: f.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 0, as: UInt16.self) })
        value = f.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 2, as: UInt32.self) }
        endpoint = String(decoding: frames[1], as: UTF8.self)
    }
}

extension ZMQSocket {
    /// Starts reporting `events` of this socket on a PAIR socket bound to `endpoint` (an
    /// `inproc://` name); connect a `.pair` socket there and read `ZMQMonitorEvent`s.
    /// The corresponding C function is `zmq_socket_monitor`.
    public func monitor(_ endpoint: String, events: ZMQMonitorEvents) throws(ZMQError) {
        let socket = try handle("zmq_socket_monitor")
        _ = try retryingOnInterrupt("zmq_socket_monitor(\"\(endpoint)\")") { zmq_socket_monitor(socket, endpoint, Int32(events.rawValue)) }
    }
}
