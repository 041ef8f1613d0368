import CBottleFitZMQ

/// A ZeroMQ socket type (`ZMQ_ROUTER`, `ZMQ_DEALER`, ...), the `type` argument of `zmq_socket`.
public struct ZMQSocketType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// Exclusive pair, mostly for `inproc://` links between two threads.
    public static let pair = ZMQSocketType(rawValue: ZMQ_PAIR)
    /// Publisher: fans messages out to subscribers, dropping for slow ones at the high-water mark.
    public static let pub = ZMQSocketType(rawValue: ZMQ_PUB)
    /// Subscriber: receives messages whose first frame starts with a subscribed prefix.
    public static let sub = ZMQSocketType(rawValue: ZMQ_SUB)
    /// Strict request side of request/reply (one request, then one reply).
    public static let req = ZMQSocketType(rawValue: ZMQ_REQ)
    /// Strict reply side of request/reply.
    public static let rep = ZMQSocketType(rawValue: ZMQ_REP)
    /// Asynchronous peer: round-robins sends, fair-queues receives; cameras and workers use it.
    public static let dealer = ZMQSocketType(rawValue: ZMQ_DEALER)
    /// Addressed peer: prefixes each received message with the sender's routing id; the broker uses it.
    public static let router = ZMQSocketType(rawValue: ZMQ_ROUTER)
    /// Pipeline sink.
    public static let pull = ZMQSocketType(rawValue: ZMQ_PULL)
    /// Pipeline source.
    public static let push = ZMQSocketType(rawValue: ZMQ_PUSH)
    /// Raw TCP: each message is `[connection id, bytes]`; for proxies and protocol tests.
    public static let stream = ZMQSocketType(rawValue: ZMQ_STREAM)

    public var description: String {
        switch self {
        case .pair: "PAIR"
        case .pub: "PUB"
        case .sub: "SUB"
        case .req: "REQ"
        case .rep: "REP"
        case .dealer: "DEALER"
        case .router: "ROUTER"
        case .pull: "PULL"
        case .push: "PUSH"
        case .stream: "STREAM"
        default: "socket type \(rawValue)"
        }
    }
}
