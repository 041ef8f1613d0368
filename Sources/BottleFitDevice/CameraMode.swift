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

    /// The broker answered BUSY, and the camera has no local model.
    public static let busy = DropReason(rawValue: "busy")
    /// The edge is dead (silent, gone, or not connected) and the camera has no local model.
    public static let edgeDownNoLocal = DropReason(rawValue: "edge_down_no_local")
    /// EXPIRED from the edge, and the camera has no local model.
    public static let expired = DropReason(rawValue: "expired")
    /// WORKER_LOST from the broker, and the camera has no local model.
    public static let workerLost = DropReason(rawValue: "worker_lost")
    /// No reply by the frame's edge deadline, and the camera has no local model.
    public static let timeout = DropReason(rawValue: "timeout")
    /// UNKNOWN_MODEL: no worker serves the model (yet), and the camera has no local model.
    public static let noWorker = DropReason(rawValue: "no_worker")
    /// Any other ERROR (BAD_REQUEST, TOO_LARGE, INTERNAL, UNSUPPORTED_VERSION), and no local model.
    public static let rejected = DropReason(rawValue: "rejected")
    /// The edge failed the frame and the camera's own model already has more queued than it can
    /// finish within twice the SLO: neither side can take it in useful time.
    public static let overloaded = DropReason(rawValue: "overloaded")
    /// A reply for the frame could not be decoded, and the camera has no local model.
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
        .busy, .edgeDownNoLocal, .expired, .workerLost, .timeout, .noWorker, .rejected, .overloaded, .decodeError,
        .sourceSkipped, .sendFailed, .inferenceError, .shutdown,
    ]

    public var description: String { rawValue }
    public static func < (a: DropReason, b: DropReason) -> Bool { a.rawValue < b.rawValue }
}
