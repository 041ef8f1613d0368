import BottleFitCore
import BottleFitImaging
import BottleFitProtocol

/// Which runner of a model a frame needs.
enum FrameInputKind: Hashable {
    case bottleneck
    case image
}

/// A frame accepted for computation, waiting in the worker for its batch.
///
/// Validation (model, shape, JPEG decoding) happened on receipt, so anything held can be
/// computed; only its deadline can still turn it away.
struct HeldFrame {
    /// Already validated input, in the form the batch fills the plan's input from.
    enum Input {
        /// Quantized bottleneck: dequantized straight into the input buffer.
        case bottleneck(QuantizedTensor)
        /// A decoded JPEG: preprocessed straight into the input buffer.
        case image(Image)
    }

    /// The camera's routing id frame, echoed byte for byte in the answer (protocol.md section 9).
    let cameraRoute: [UInt8]
    let cameraID: String
    let sequence: UInt64
    let model: ServedModel
    let input: Input
    /// "dl", Unix ms.
    let deadline: UInt64
    /// When the worker received the frame: `queued_ms` runs from here to the start of compute.
    let receivedAt: ContinuousClock.Instant

    var kind: FrameInputKind {
        switch input {
        case .bottleneck: .bottleneck
        case .image: .image
        }
    }

    /// Frames batch together when they run the same runner.
    func batches(with other: HeldFrame) -> Bool { model === other.model && kind == other.kind }
}
