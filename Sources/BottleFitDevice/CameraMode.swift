/// Where a camera is configured to compute, as compared in the BottleFit paper.
public enum CameraMode: String, Sendable, CaseIterable, CustomStringConvertible {
    /// BottleFit: run the head, send the quantized bottleneck, the edge runs the tail.
    case split
    /// Run the whole model on the camera; never use the edge (baseline).
    case local
    /// Send the JPEG, the edge runs the whole model (baseline).
    case offload

    public var description: String { rawValue }
}

/// What the camera does with one frame, as decided by `CameraPolicy`.
public enum FrameRoute: Sendable, Equatable, CustomStringConvertible {
    /// Run the head and send the bottleneck.
    case split
    /// Run the whole model here.
    case local
    /// Send the JPEG.
    case offload
    /// Neither the edge nor the camera can take the frame.
    case drop(DropReason)

    public var description: String {
        switch self {
        case .split: "split"
        case .local: "local"
        case .offload: "offload"
        case .drop(let reason): "drop(\(reason))"
        }
    }
}

/// Why a frame ended without a result. Extensible, like the protocol's error codes; the raw
/// values are the names used in summaries and metric labels.
public struct DropReason: RawRepresentable, Hashable, Sendable, Comparable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }

    /// The broker answered BUSY and the frame could not be computed locally in time.
    public static let busy = DropReason(rawValue: "busy")
    /// The edge is in BUSY back-off and the camera has no local model.
    public static let busyNoLocal = DropReason(rawValue: "busy_no_local")
    /// The edge is silent or missing deadlines and the camera has no local model.
    public static let edgeDownNoLocal = DropReason(rawValue: "edge_down_no_local")
    /// EXPIRED from the edge, and too late to compute locally.
    public static let expired = DropReason(rawValue: "expired")
    /// WORKER_LOST from the broker, and too late to compute locally.
    public static let workerLost = DropReason(rawValue: "worker_lost")
    /// No reply by the time a local fallback could still meet the deadline, and none possible.
    public static let timeout = DropReason(rawValue: "timeout")
    /// Any other ERROR (BAD_REQUEST, UNKNOWN_MODEL, TOO_LARGE, INTERNAL, UNSUPPORTED_VERSION), too late for local.
    public static let rejected = DropReason(rawValue: "rejected")
    /// A reply for the frame could not be decoded, and it was too late to compute locally.
    public static let decodeError = DropReason(rawValue: "decode_error")
    /// The frame source skipped an input it could not read (counted as an offered frame).
    public static let sourceSkipped = DropReason(rawValue: "source_skipped")
    /// The frame could not be sent (broker not connected, queue full) and not computed locally.
    public static let sendFailed = DropReason(rawValue: "send_failed")
    /// Preprocessing, inference or quantization failed on the camera.
    public static let inferenceError = DropReason(rawValue: "inference_error")
    /// Still unanswered when the camera's drain time ran out.
    public static let shutdown = DropReason(rawValue: "shutdown")

    /// Every reason a camera records (what `/metrics` lists, at 0 when nothing was dropped for it).
    public static let all: [DropReason] = [
        .busy, .busyNoLocal, .edgeDownNoLocal, .expired, .workerLost, .timeout, .rejected, .decodeError,
        .sourceSkipped, .sendFailed, .inferenceError, .shutdown,
    ]

    public var description: String { rawValue }
    public static func < (a: DropReason, b: DropReason) -> Bool { a.rawValue < b.rawValue }
}
