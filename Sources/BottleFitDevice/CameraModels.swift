import BottleFitCore
import BottleFitEngine
import BottleFitImaging
import BottleFitProtocol
import Foundation

/// The camera's engine sessions and the buffers they work in, planned once at batch 1 so a
/// frame's preprocessing, inference and quantization allocate nothing.
///
/// Used from the camera's loop thread only (sessions are one thread at a time).
final class CameraModels {
    /// One planned model with its input and output memory.
    struct Planned {
        let session: InferenceSession
        let plan: ExecutionPlan
        let input: UnsafeMutableBufferPointer<Float>
        let output: UnsafeBufferPointer<Float>
        /// Output shape without the batch dimension.
        let outputShape: [Int]

        init(_ url: URL, role: String, compute: ComputeContext) throws(CameraError) {
            do {
                session = try InferenceSession(contentsOf: url, compute: compute)
                plan = try session.plan(batch: 1)
            } catch {
                throw .model("\(role) model \(url.path): \(error)")
            }
            guard plan.inputTypes.count == 1, plan.outputTypes.count == 1,
                  let input = plan.inputBuffer(plan.inputTypes[0].name),
                  let output = plan.outputBuffer(plan.outputTypes[0].name)
            else { throw .model("\(role) model must have one float input and one float output") }
            self.input = input
            self.output = output
            outputShape = Array(plan.outputTypes[0].type.shape.dropFirst())
        }

        var inputShape: [Int] { plan.inputTypes[0].type.shape }
    }

    let head: Planned?
    let full: Planned?
    /// `nil` for offload without a local model: its images are sent as JPEG, never preprocessed.
    let preprocessor: ImagePreprocessor?
    private let quantizer = BottleneckQuantizer()
    /// The bottleneck of the latest frame; reused (a FRAME's payload shares it only until sent).
    private var bottleneck: [UInt8]

    init(configuration: CameraConfiguration) throws(CameraError) {
        let needsHead = configuration.mode == .split
        head = needsHead ? try configuration.headModel.map { (url) throws(CameraError) in try Planned(url, role: "head", compute: configuration.compute) } : nil
        full = try configuration.fullModel.map { (url) throws(CameraError) in try Planned(url, role: "whole", compute: configuration.compute) }
        if let head, let full, head.inputShape != full.inputShape {
            throw .model("head input \(head.inputShape) and whole-model input \(full.inputShape) differ")
        }
        // The whole model answers class scores; a head given as --full would "classify" by the
        // argmax of its bottleneck, every answer wrong and nothing said.
        if let full, let url = configuration.fullModel, full.outputShape.filter({ $0 > 1 }).count > 1 {
            throw .model("the whole model \(url.path) outputs \(full.outputShape), not a vector of class scores: is it a head? (--full takes the model from image to logits)")
        }
        if let head, let full, head.outputShape == full.outputShape {
            throw .model("the head and the whole model both output \(head.outputShape): --full must be the whole model, not a head")
        }
        if let preprocessor = configuration.preprocessor {
            self.preprocessor = preprocessor
        } else if let shape = (head ?? full)?.inputShape {
            guard shape.count == 4 else { throw .model("model input must be NCHW, not \(shape)") }
            do {
                let stated = try ImagePreprocessor.Normalization.fromMetadata((head ?? full)!.session.graph.metadata)
                preprocessor = try ImagePreprocessor(channels: shape[1], height: shape[2], width: shape[3], normalization: stated)
            } catch {
                throw .model("no preprocessing fits input \(shape): \(error)")
            }
        } else {
            preprocessor = nil
        }
        if let preprocessor {
            for planned in [head, full].compactMap({ $0 }) where planned.input.count != preprocessor.elementCount {
                throw .model("model input \(planned.inputShape) does not match the preprocessor's \(preprocessor.shape())")
            }
        }
        bottleneck = [UInt8](repeating: 0, count: head?.output.count ?? 0)
    }

    /// Runs each model once on whatever its input holds, so first-use costs (page faults, lazy
    /// setup) are paid before the first frame, and returns the whole model's time in ms, which
    /// seeds the policy's local estimate.
    func warmUp(clock: any CameraClock) -> Double? {
        head?.plan.execute()
        guard let full else { return nil }
        full.plan.execute()
        let t0 = clock.unixMicroseconds()
        full.plan.execute()
        return Double(clock.unixMicroseconds() &- t0) / 1000
    }

    /// Runs the head on `image` and quantizes its output: the payload of a split FRAME.
    func runHead(_ image: Image) throws(QuantizationError) -> QuantizedTensor {
        guard let head, let preprocessor else { preconditionFailure("runHead without a head model") }
        preprocessor.process(image, into: head.input)
        head.plan.execute()
        let parameters = try bottleneck.withUnsafeMutableBufferPointer { (q) throws(QuantizationError) -> QuantizationParameters in
            try quantizer.quantize(head.output, into: q)
        }
        return QuantizedTensor(shape: head.outputShape, data: bottleneck, parameters: parameters)
    }

    /// Runs the whole model on `image` and returns its top-1 class.
    func runFull(_ image: Image) -> Int {
        guard let full, let preprocessor else { preconditionFailure("runFull without a whole model") }
        preprocessor.process(image, into: full.input)
        full.plan.execute()
        return Self.argmax(full.output)
    }

    static func argmax(_ values: UnsafeBufferPointer<Float>) -> Int {
        var best = 0
        for i in values.indices where values[i] > values[best] { best = i }
        return best
    }
}
