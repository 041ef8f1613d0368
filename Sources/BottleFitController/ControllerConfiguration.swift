import BottleFitProtocol
import BottleFitSecurity
import ZeroMQ

/// The controller's CURVE settings: it is a CURVE client of the broker's STATS (with its own key
/// pair, on the broker's STATS allow-list) and the CURVE server of its DIRECTIVE publisher,
/// which lets in the cameras on its allow-list.
public struct ControllerCurve: Sendable, Equatable {
    public var keys: ZMQCurveKeyPair
    /// The broker's public key (the server of the STATS socket).
    public var brokerKey: String
    /// Public keys of the cameras allowed to subscribe to DIRECTIVEs.
    public var cameraAllowList: String

    public init(keys: ZMQCurveKeyPair, brokerKey: String, cameraAllowList: String) {
        self.keys = keys
        self.brokerKey = brokerKey
        self.cameraAllowList = cameraAllowList
    }

    /// The one door of the controller's authenticator, named as the `socket` label of its metrics.
    public var doors: [CurveDoor] { [CurveDoor(name: "directives", allowListPath: cameraAllowList)] }
}

/// Where the controller listens and publishes, and how often.
public struct ControllerConfiguration: Sendable, Equatable {
    /// The broker's STATS endpoint; the controller's SUB socket connects to it.
    public var statsEndpoint: String
    /// Where the controller's PUB socket binds; cameras connect their directive SUB here.
    public var directiveEndpoint: String
    /// The control law.
    public var settings: ControllerSettings
    /// Longest wait in `zmq_poll`; bounds how long `stop()` takes.
    public var pollTimeout: Duration = .milliseconds(20)
    /// How often the directive in force is published again (PUB/SUB may lose messages).
    public var republishInterval: Duration = .seconds(1)
    /// A directive's `vu` is this far ahead of its publication: if the controller dies, cameras
    /// return to their own choice within it. Several republish intervals, so a lost message or two do not lapse it.
    public var directiveValidity: Duration = .seconds(5)
    /// `ZMQ_LINGER` of both sockets, in milliseconds.
    public var linger: Int32 = 1000
    /// `ZMQ_SNDHWM` of the PUB socket.
    public var highWaterMark: Int32 = 1000
    /// Message size limits (for `ZMQ_MAXMSGSIZE` and decoding).
    public var limits: ProtocolLimits = .default
    /// CURVE on both sockets (docs/security.md); nil: plain text.
    public var curve: ControllerCurve?

    /// Endpoints as docs/protocol.md suggests: STATS from `tcp://localhost:5557`, directives on `tcp://*:5558`.
    public static let suggested = ControllerConfiguration(statsEndpoint: "tcp://localhost:5557", directiveEndpoint: "tcp://*:5558")

    public init(statsEndpoint: String, directiveEndpoint: String, settings: ControllerSettings = ControllerSettings()) {
        self.statsEndpoint = statsEndpoint
        self.directiveEndpoint = directiveEndpoint
        self.settings = settings
    }

    /// What is wrong with this configuration, in words; empty when it is usable.
    public var problems: [String] {
        var problems = settings.problems
        if statsEndpoint.isEmpty { problems.append("the STATS endpoint is empty") }
        if directiveEndpoint.isEmpty { problems.append("the directive endpoint is empty") }
        if pollTimeout <= .zero || pollTimeout > .milliseconds(100) { problems.append("pollTimeout must be in (0, 100 ms] so stop() is prompt") }
        if republishInterval <= .zero { problems.append("republishInterval must be positive") }
        if directiveValidity <= republishInterval {
            problems.append("directiveValidity must exceed republishInterval, or directives lapse between publications")
        }
        if linger < 0 { problems.append("linger must be bounded (≥ 0 ms)") }
        if highWaterMark < 1 { problems.append("highWaterMark must be at least 1") }
        return problems
    }
}

/// The controller's counts, kept in one place.
public struct ControllerCounters: Sendable, Equatable, CustomStringConvertible {
    /// STATS decoded and given to the policy.
    public var statsReceived = 0
    /// Messages on the STATS socket that were not a valid STATS (wrong topic, undecodable, too large).
    public var statsRejected = 0
    /// Decisions taken: one per STATS, plus one per entry into silence.
    public var decisions = 0
    /// Decisions that raised the fraction.
    public var raises = 0
    /// Raises by the signal that was over its objective (a raise with two signals over counts for both).
    public var raisesBySignal: [ControllerSignal: Int] = [:]
    /// Decisions that lowered it.
    public var lowers = 0
    /// Times the broker fell silent.
    public var silences = 0
    /// DIRECTIVEs handed to the PUB socket (new and re-published).
    public var directivesPublished = 0
    /// DIRECTIVEs the PUB socket refused (never expected: PUB drops for slow subscribers instead).
    public var directivesUnsent = 0

    public init() {}

    public var description: String {
        let by = raisesBySignal.isEmpty ? "none" : raisesBySignal.map { "\($0.key)=\($0.value)" }.sorted().joined(separator: ",")
        return "decisions=\(decisions) raises=\(raises) raised_by[\(by)] lowers=\(lowers) silences=\(silences) stats_received=\(statsReceived) "
            + "stats_rejected=\(statsRejected) directives_published=\(directivesPublished) directives_unsent=\(directivesUnsent)"
    }
}
