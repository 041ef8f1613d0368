import BottleFitProtocol
import BottleFitSecurity
import ZeroMQ

/// How the broker schedules: queue bound, heartbeats, stats cadence and the hints it gives.
///
/// Everything here is socket-free and read by `BrokerScheduler`; the defaults follow
/// docs/protocol.md (heartbeat 1 s, liveness 3, STATS every 250 ms).
public struct BrokerPolicy: Sendable, Equatable {
    /// Frames that may wait in the broker at once, over all cameras. A frame arriving when this
    /// many wait is answered BUSY (or, when its camera has fewer waiting than the longest queue,
    /// takes the place of that queue's newest frame, which is answered BUSY instead).
    public var queueCapacity: Int = 1024
    /// How often each side sends HEARTBEAT when it has sent nothing else (protocol: 1 s).
    public var heartbeatInterval: Duration = .seconds(1)
    /// Intervals of silence after which a worker is declared lost (protocol: 3).
    public var liveness: Int = 3
    /// How often STATS is published (protocol: 250 ms intended).
    public var statsInterval: Duration = .milliseconds(250)
    /// Queue-time percentiles cover the frames that left the queue within this window...
    public var queueTimeWindow: Duration = .seconds(10)
    /// ...and at most this many of the most recent ones, so computing them stays cheap.
    public var queueTimeSamples: Int = 2048
    /// Camera latency figures in STATS cover the reports received within this window...
    public var cameraReportWindow: Duration = .seconds(3)
    /// ...and at most this many of the most recent reports.
    public var cameraReportCapacity: Int = 4096
    /// Bounds of the BUSY retry hint ("ra"), in milliseconds. The hint is the time the current
    /// queue needs to drain at the recent completion rate, clamped to these bounds.
    public var retryAfterMinimum: UInt64 = 100
    public var retryAfterMaximum: UInt64 = 5000
    /// A frame still in flight at a live worker this long after its deadline is answered
    /// WORKER_LOST and forgotten: the camera gave up on it long ago, and a worker that never
    /// answers must not make the in-flight table grow without bound.
    public var inFlightGrace: Duration = .seconds(30)
    /// Limits of the wire protocol, used to size texts in the ERRORs the broker writes.
    public var limits: ProtocolLimits = .default

    public init() {}

    /// Silence after which a worker is lost: `heartbeatInterval * liveness`.
    public var workerExpiry: Duration { heartbeatInterval * max(1, liveness) }
}

/// The broker's CURVE settings: its key pair (it is the CURVE server of all three sockets) and
/// one allow-list file per socket, so a camera's key cannot pose as a worker's.
public struct BrokerCurve: Sendable, Equatable {
    public var keys: ZMQCurveKeyPair
    /// Public keys of the cameras (frontend).
    public var cameraAllowList: String
    /// Public keys of the tail workers (backend).
    public var workerAllowList: String
    /// Public keys of the STATS subscribers (the controller, a load generator).
    public var statsAllowList: String

    public init(keys: ZMQCurveKeyPair, cameraAllowList: String, workerAllowList: String, statsAllowList: String) {
        self.keys = keys
        self.cameraAllowList = cameraAllowList
        self.workerAllowList = workerAllowList
        self.statsAllowList = statsAllowList
    }

    /// The doors of the broker's authenticator, named as the `socket` label of its metrics.
    public var doors: [CurveDoor] {
        [CurveDoor(name: "frontend", allowListPath: cameraAllowList), CurveDoor(name: "backend", allowListPath: workerAllowList),
         CurveDoor(name: "stats", allowListPath: statsAllowList)]
    }
}

/// Where the broker listens and how its sockets and loop are tuned; `policy` says how it schedules.
public struct BrokerConfiguration: Sendable, Equatable {
    /// ROUTER for cameras, e.g. `tcp://*:5555`.
    public var frontendEndpoint: String
    /// ROUTER for tail workers, e.g. `tcp://*:5556`.
    public var backendEndpoint: String
    /// PUB for STATS, e.g. `tcp://*:5557`.
    public var statsEndpoint: String
    /// Scheduling rules.
    public var policy: BrokerPolicy
    /// Longest wait in `zmq_poll`; bounds how long `stop()` takes to be noticed and how late timers fire.
    public var pollTimeout: Duration = .milliseconds(20)
    /// `ZMQ_SNDHWM`/`ZMQ_RCVHWM` of the ROUTERs, in messages per peer. Credit keeps worker queues
    /// far below it; a camera that does not read its replies loses them (counted) instead of
    /// blocking the broker.
    public var highWaterMark: Int32 = 10_000
    /// Messages read from one socket before the loop turns to the other sockets and its timers.
    public var receiveBatch: Int = 256
    /// `ZMQ_LINGER` of every socket, in milliseconds: how long closing waits for unsent messages.
    public var linger: Int32 = 1000
    /// CURVE on all three sockets, each with its allow-list (docs/security.md); nil: plain text,
    /// anyone who reaches an endpoint is served.
    public var curve: BrokerCurve?

    public init(frontendEndpoint: String, backendEndpoint: String, statsEndpoint: String, policy: BrokerPolicy = BrokerPolicy()) {
        self.frontendEndpoint = frontendEndpoint
        self.backendEndpoint = backendEndpoint
        self.statsEndpoint = statsEndpoint
        self.policy = policy
    }

    /// The endpoints docs/protocol.md suggests: 5555 cameras, 5556 workers, 5557 stats, on all interfaces.
    public static let suggested = BrokerConfiguration(
        frontendEndpoint: "tcp://*:5555", backendEndpoint: "tcp://*:5556", statsEndpoint: "tcp://*:5557")

    /// Problems that would make the broker misbehave, as sentences; empty when the configuration is usable.
    public var problems: [String] {
        var problems: [String] = []
        if !(1...1_000_000).contains(policy.queueCapacity) { problems.append("queue capacity must be 1...1000000 frames (got \(policy.queueCapacity))") }
        if policy.heartbeatInterval <= .zero || policy.heartbeatInterval > .seconds(3600) { problems.append("heartbeat interval must be more than 0 and at most an hour") }
        if !(1...1000).contains(policy.liveness) { problems.append("liveness must be 1...1000 heartbeats (got \(policy.liveness))") }
        if policy.statsInterval <= .zero || policy.statsInterval > .seconds(3600) { problems.append("stats interval must be more than 0 and at most an hour") }
        if policy.queueTimeSamples < 1 { problems.append("queue-time samples must be at least 1") }
        if policy.cameraReportWindow <= .zero { problems.append("the camera report window must be positive") }
        if policy.cameraReportCapacity < 1 { problems.append("camera report capacity must be at least 1") }
        if policy.retryAfterMinimum > policy.retryAfterMaximum { problems.append("retry-after minimum exceeds its maximum") }
        if pollTimeout <= .zero || pollTimeout > .seconds(1) { problems.append("poll timeout must be in (0, 1 s]") }
        if receiveBatch < 1 { problems.append("receive batch must be at least 1") }
        if highWaterMark < 0 { problems.append("high-water mark must not be negative") }
        return problems
    }
}
