import BottleFitEngine
import BottleFitImaging
import BottleFitSecurity
import ZeroMQ

/// A camera's CURVE settings: its key pair (on the broker's camera allow-list and the
/// controller's) and the public keys of the broker and the controller.
public struct CameraCurve: Sendable, Equatable {
    public var keys: ZMQCurveKeyPair
    public var brokerKey: String
    /// Needed only when the camera subscribes to directives.
    public var controllerKey: String?

    public init(keys: ZMQCurveKeyPair, brokerKey: String, controllerKey: String?) {
        self.keys = keys
        self.brokerKey = brokerKey
        self.controllerKey = controllerKey
    }
}
import Foundation

/// Everything one camera needs to run: identity, mode, endpoints, models and pacing.
public struct CameraConfiguration: Sendable {
    /// "c" of every FRAME; unique in the fleet.
    public var cameraID: String
    public var mode: CameraMode
    /// The broker's frontend (`tcp://host:5555`); required for split and offload.
    public var brokerEndpoint: String?
    /// The controller's directive PUB (`tcp://host:5558`); `nil` to run without directives.
    public var directiveEndpoint: String?
    /// "m" of every FRAME: the model whose tail (split) or whole (offload) the edge runs.
    public var modelName: String
    /// The head (split mode): image in, bottleneck out.
    public var headModel: URL?
    /// The whole model: required for local mode, and what split and offload fall back to.
    public var fullModel: URL?
    /// Preprocessing; `nil` derives it from the model's input shape (ImageNet statistics for 3 channels).
    public var preprocessor: ImagePreprocessor?
    /// Frames per second taken from the source (open loop: latency counts from the scheduled
    /// time); `nil` takes frames as fast as the in-flight bound allows.
    public var framesPerSecond: Double?
    /// Stop after this many frames (in addition to the source ending); `nil` for no limit.
    public var maxFrames: Int?
    /// Deadline of each frame after it is taken: "dl" = now + SLO.
    public var sloMilliseconds: UInt64
    /// Frames at the edge without an answer before the camera waits for replies.
    public var maxInFlight: Int
    public var heartbeatIntervalMilliseconds: UInt64
    public var liveness: UInt64
    /// Longest time without an edge frame while the edge is congested (at most 1000 ms): the
    /// camera keeps probing so it sees capacity come back (docs/device.md).
    public var probeIntervalMilliseconds: UInt64
    /// The longest a poll waits; bounds how late `stop()` is noticed.
    public var pollTimeoutMilliseconds: Int
    /// JPEG quality for offload frames whose source gave no JPEG.
    public var jpegQuality: Int
    /// How often the camera reports the latency of its edge frames to the broker (a HEARTBEAT
    /// carrying `lr`, protocol.md section 7); 0 never reports.
    public var latencyReportIntervalMilliseconds: UInt64
    /// How the camera's sessions compute (threads, GEMM): one thread and the CPU's best GEMM
    /// unless given.
    public var compute: ComputeContext = .singleThreaded
    /// CURVE to the broker and the controller (docs/security.md); nil: plain text.
    public var curve: CameraCurve?

    public init(
        cameraID: String, mode: CameraMode = .split, brokerEndpoint: String? = nil, directiveEndpoint: String? = nil,
        modelName: String, headModel: URL? = nil, fullModel: URL? = nil, preprocessor: ImagePreprocessor? = nil,
        framesPerSecond: Double? = nil, maxFrames: Int? = nil, sloMilliseconds: UInt64 = 250, maxInFlight: Int = 8,
        heartbeatIntervalMilliseconds: UInt64 = 1000, liveness: UInt64 = 3,
        probeIntervalMilliseconds: UInt64 = 1000,
        pollTimeoutMilliseconds: Int = 50, jpegQuality: Int = 90, latencyReportIntervalMilliseconds: UInt64 = 1000
    ) {
        self.cameraID = cameraID
        self.mode = mode
        self.brokerEndpoint = brokerEndpoint
        self.directiveEndpoint = directiveEndpoint
        self.modelName = modelName
        self.headModel = headModel
        self.fullModel = fullModel
        self.preprocessor = preprocessor
        self.framesPerSecond = framesPerSecond
        self.maxFrames = maxFrames
        self.sloMilliseconds = sloMilliseconds
        self.maxInFlight = maxInFlight
        self.heartbeatIntervalMilliseconds = heartbeatIntervalMilliseconds
        self.liveness = liveness
        self.probeIntervalMilliseconds = probeIntervalMilliseconds
        self.pollTimeoutMilliseconds = pollTimeoutMilliseconds
        self.jpegQuality = jpegQuality
        self.latencyReportIntervalMilliseconds = latencyReportIntervalMilliseconds
    }

    /// Rejects combinations that cannot run, before any socket or model is touched.
    public func validate() throws(CameraError) {
        func fail(_ message: String) -> CameraError { .invalidConfiguration(message) }
        guard !cameraID.isEmpty, cameraID.utf8.count <= 128 else { throw fail("camera id must be 1...128 bytes") }
        guard !modelName.isEmpty, modelName.utf8.count <= 128 else { throw fail("model name must be 1...128 bytes") }
        switch mode {
        case .split:
            guard headModel != nil else { throw fail("split mode needs the head model") }
            guard brokerEndpoint != nil else { throw fail("split mode needs a broker endpoint") }
        case .offload:
            guard brokerEndpoint != nil else { throw fail("offload mode needs a broker endpoint") }
        case .local:
            guard fullModel != nil else { throw fail("local mode needs the whole model") }
        }
        if let fps = framesPerSecond, !(fps >= 0.001 && fps <= 100_000) { throw fail("frames per second must be between 0.001 and 100000, not \(fps)") }
        if let n = maxFrames, !(0...1_000_000_000_000).contains(n) { throw fail("max frames must be 0...1000000000000, not \(n)") }
        guard (1...86_400_000).contains(sloMilliseconds) else { throw fail("the SLO must be between 1 ms and one day (86400000 ms), not \(sloMilliseconds)") }
        guard (1...65536).contains(maxInFlight) else { throw fail("max in flight must be 1...65536") }
        guard (1...3_600_000).contains(heartbeatIntervalMilliseconds), (1...1000).contains(liveness) else {
            throw fail("the heartbeat interval must be 1...3600000 ms and liveness 1...1000")
        }
        guard latencyReportIntervalMilliseconds <= 3_600_000 else { throw fail("the latency report interval must be at most 3600000 ms") }
        guard (1...1000).contains(probeIntervalMilliseconds) else { throw fail("the probe interval must be 1...1000 ms") }
        guard (1...10_000).contains(pollTimeoutMilliseconds) else { throw fail("poll timeout must be 1...10000 ms") }
        guard (1...100).contains(jpegQuality) else { throw fail("JPEG quality must be 1...100") }
        guard latencyReportIntervalMilliseconds == 0 || latencyReportIntervalMilliseconds >= 100 else {
            throw fail("the latency report interval must be 0 (never) or at least 100 ms")
        }
        if let curve, directiveEndpoint != nil, mode != .local, curve.controllerKey == nil {
            throw fail("with CURVE, subscribing to directives needs the controller's public key")
        }
    }

    /// The policy parameters this configuration implies.
    var policyConfiguration: CameraPolicy.Configuration {
        CameraPolicy.Configuration(
            cameraID: cameraID, mode: mode, canComputeLocally: fullModel != nil,
            heartbeatIntervalMilliseconds: heartbeatIntervalMilliseconds, liveness: liveness,
            probeIntervalMilliseconds: probeIntervalMilliseconds,
            startingProbeIntervalMilliseconds: min(250, probeIntervalMilliseconds),
            framePeriodMilliseconds: framesPerSecond.map { 1000 / $0 })
    }
}

/// Why a camera could not start.
public enum CameraError: Error, Sendable, CustomStringConvertible {
    case invalidConfiguration(String)
    /// A model could not be loaded or planned, or does not fit the camera's use.
    case model(String)
    /// A socket could not be made or connected.
    case transport(String)
    /// `start()` was called twice.
    case alreadyStarted

    public var description: String {
        switch self {
        case .invalidConfiguration(let m): "invalid camera configuration: \(m)"
        case .model(let m): "camera model: \(m)"
        case .transport(let m): "camera transport: \(m)"
        case .alreadyStarted: "the camera has already been started"
        }
    }
}

/// The camera's time source: Unix time in microseconds. Deadlines are compared across hosts,
/// so this is the wall clock; the load generator can substitute an emulated one.
public protocol CameraClock: Sendable {
    func unixMicroseconds() -> UInt64
}

/// The system's wall clock (`clock_gettime(CLOCK_REALTIME)`).
public struct SystemCameraClock: CameraClock {
    public init() {}
    public func unixMicroseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return UInt64(ts.tv_sec) * 1_000_000 + UInt64(ts.tv_nsec) / 1000
    }
}

/// A frame source that skips unusable inputs and counts them, so the camera can account each
/// skipped input as an offered frame dropped with `source_skipped`.
public protocol SkippingFrameSource: FrameSource {
    /// Inputs skipped so far.
    var skippedCount: Int { get }
}

extension DirectoryFrameSource: SkippingFrameSource {
    public var skippedCount: Int { skipped }
}
