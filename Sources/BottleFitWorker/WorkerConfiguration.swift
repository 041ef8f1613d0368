import BottleFitEngine
import BottleFitProtocol
import BottleFitSecurity
import Foundation

/// The ONNX files a worker runs for one model name.
///
/// At least one is needed. The tail (decoder + tail, input = the bottleneck) serves FRAMEs of
/// kind `bottleneck`; the full model (input = the image) serves kind `jpeg` (offload mode).
public struct WorkerModelFiles: Sendable, Equatable {
    /// Decoder + tail: input `[batch, C, H, W]` bottleneck, output `[batch, classes]` logits.
    public var tail: URL?
    /// The whole model: input `[batch, 1 or 3, H, W]` image, output `[batch, classes]` logits.
    public var full: URL?
    /// JPEG frames have their shorter side resized to this before the centre crop to the full
    /// model's input size (torchvision's 256 for 224 crops); `nil` resizes just enough to cover the crop.
    public var resizeShorterSide: Int?

    public init(tail: URL? = nil, full: URL? = nil, resizeShorterSide: Int? = nil) {
        self.tail = tail
        self.full = full
        self.resizeShorterSide = resizeShorterSide
    }
}

/// Everything a tail worker needs: where the broker is, what it serves, how it batches.
///
/// Defaults follow docs/protocol.md: heartbeat every second, broker dead after 3 silent
/// intervals, reconnect back-off from 1 s doubling to 32 s (the ZeroMQ Guide's Paranoid Pirate).
public struct WorkerConfiguration: Sendable {
    /// The broker's backend ROUTER, e.g. `tcp://broker:5556`.
    public var endpoint: String
    /// "w" of READY and RESULT: the worker's name in logs and STATS.
    public var workerID: String
    /// Model name ("m" of FRAME) → the files that serve it.
    public var models: [String: WorkerModelFiles]
    /// Frames the broker may have outstanding at this worker (READY "cr"). Above `maxBatch`, so the
    /// next batch gathers while one computes.
    public var credit: Int
    /// The most frames computed as one batch.
    public var maxBatch: Int
    /// Classes in each RESULT (fewer if the model has fewer).
    public var topK: Int
    /// How the worker's sessions compute (threads, GEMM); workers in one process may share one.
    public var compute: ComputeContext
    /// Send HEARTBEAT after this long without sending anything.
    public var heartbeatInterval: Duration
    /// The broker is dead after `liveness` × `heartbeatInterval` without a message from it.
    public var liveness: Int
    /// First pause before reconnecting to a silent broker; doubles up to `maxReconnectDelay`.
    public var reconnectDelay: Duration
    /// Cap of the reconnect back-off.
    public var maxReconnectDelay: Duration
    /// Longest single wait of the loop, which bounds how soon `stop()` is noticed.
    public var pollTimeout: Duration
    /// Wire limits for decoding and encoding (and `ZMQ_MAXMSGSIZE` of the socket).
    public var limits: ProtocolLimits
    /// CURVE to the broker (the worker's key pair and the broker's public key); nil: plain text.
    public var curve: CurveClient?

    public init(
        endpoint: String, workerID: String, models: [String: WorkerModelFiles],
        credit: Int = 16, maxBatch: Int = 8, topK: Int = 5, compute: ComputeContext = .singleThreaded,
        heartbeatInterval: Duration = .seconds(1), liveness: Int = 3,
        reconnectDelay: Duration = .seconds(1), maxReconnectDelay: Duration = .seconds(32),
        pollTimeout: Duration = .milliseconds(100), limits: ProtocolLimits = .default
    ) {
        self.endpoint = endpoint
        self.workerID = workerID
        self.models = models
        self.credit = credit
        self.maxBatch = maxBatch
        self.topK = topK
        self.compute = compute
        self.heartbeatInterval = heartbeatInterval
        self.liveness = liveness
        self.reconnectDelay = reconnectDelay
        self.maxReconnectDelay = maxReconnectDelay
        self.pollTimeout = pollTimeout
        self.limits = limits
    }

    /// What is wrong with this configuration, one sentence each; empty when it is usable.
    public var problems: [String] {
        var out: [String] = []
        func identifier(_ s: String, _ what: String) {
            if s.isEmpty || s.utf8.count > limits.maxIdentifierBytes {
                out.append("\(what) \"\(s)\" must be 1 to \(limits.maxIdentifierBytes) UTF-8 bytes")
            }
        }
        if endpoint.isEmpty { out.append("the broker endpoint is empty") }
        identifier(workerID, "worker id")
        if models.isEmpty { out.append("the worker serves no model") }
        if models.count > limits.maxModels { out.append("at most \(limits.maxModels) models, not \(models.count)") }
        for (name, files) in models.sorted(by: { $0.key < $1.key }) {
            identifier(name, "model name")
            if files.tail == nil && files.full == nil { out.append("model \(name) has neither a tail nor a full model") }
            if let side = files.resizeShorterSide, side < 1 { out.append("model \(name): resize must be positive") }
        }
        if !(1...limits.maxCredit).contains(credit) { out.append("credit must be in 1...\(limits.maxCredit), not \(credit)") }
        if !(1...limits.maxCredit).contains(maxBatch) { out.append("max batch must be in 1...\(limits.maxCredit), not \(maxBatch)") }
        if !(1...limits.maxTopK).contains(topK) { out.append("top-k must be in 1...\(limits.maxTopK), not \(topK)") }
        if !(1...1000).contains(liveness) { out.append("liveness must be 1...1000 heartbeats, not \(liveness)") }
        if heartbeatInterval > .seconds(3600) { out.append("heartbeat interval must be at most an hour") }
        for (value, what) in [(heartbeatInterval, "heartbeat interval"), (reconnectDelay, "reconnect delay"), (pollTimeout, "poll timeout")]
        where value <= .zero {
            out.append("\(what) must be positive")
        }
        if maxReconnectDelay < reconnectDelay { out.append("max reconnect delay is below the reconnect delay") }
        return out
    }
}

/// Why a worker could not start.
public enum WorkerError: Error, Sendable, CustomStringConvertible {
    /// The configuration has these problems (`WorkerConfiguration.problems`).
    case invalidConfiguration([String])
    /// A model file failed to load or does not fit the worker (one input, one output, fixed sample shape).
    case model(name: String, reason: String)
    /// The socket could not be made or connected.
    case socket(String)
    /// `start()` was called twice.
    case alreadyStarted

    public var description: String {
        switch self {
        case .invalidConfiguration(let problems): "invalid worker configuration: " + problems.joined(separator: "; ")
        case .model(let name, let reason): "model \(name): \(reason)"
        case .socket(let why): "worker socket: \(why)"
        case .alreadyStarted: "the worker was already started"
        }
    }
}
