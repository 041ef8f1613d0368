import BottleFitCore
import BottleFitEngine
import BottleFitImaging
import Foundation

/// One ONNX model the worker runs: its session, its per-sample input shape, and a plan per
/// batch size, made the first time that size is needed and kept (a steady-state batch then
/// allocates nothing in the engine).
///
/// Like `InferenceSession` it is used from one thread at a time: the worker's loop thread.
final class ModelRunner {
    let session: InferenceSession
    let inputName: String
    let outputName: String
    /// The input shape without the batch dimension, e.g. `[C, H, W]`.
    let sampleShape: [Int]
    /// Floats one sample occupies in the input buffer.
    let sampleCount: Int
    private var plans: [Int: ExecutionPlan] = [:]

    /// Loads the file and plans batch 1, so a model that cannot run fails at start, not on the first frame.
    init(contentsOf url: URL, compute: ComputeContext) throws(EngineError) {
        session = try InferenceSession(contentsOf: url, compute: compute)
        let graph = session.optimizedGraph
        guard graph.inputs.count == 1, graph.outputs.count == 1 else {
            throw .invalidModel("a served model needs one input and one output, not \(graph.inputs.count) and \(graph.outputs.count)")
        }
        inputName = graph.inputs[0].name
        outputName = graph.outputs[0].name
        let shape = try InferenceSession.concreteShape(graph.inputs[0], batch: 1)
        guard shape.count >= 2 else { throw .invalidModel("input '\(inputName)' needs a batch and a sample dimension") }
        sampleShape = Array(shape.dropFirst())
        sampleCount = sampleShape.reduce(1, *)
        _ = try plan(batch: 1)
    }

    /// The plan for `batch` samples, cached.
    func plan(batch: Int) throws(EngineError) -> ExecutionPlan {
        if let plan = plans[batch] { return plan }
        let plan = try session.plan(batch: batch)
        guard plan.inputBuffer(inputName)?.count == batch * sampleCount, plan.outputBuffer(outputName) != nil else {
            throw .invalidModel("the plan for batch \(batch) has no float input '\(inputName)' of \(batch * sampleCount) elements or no float output '\(outputName)'")
        }
        plans[batch] = plan
        return plan
    }
}

/// A model name the worker serves, with the runners for the two kinds of FRAME payload.
final class ServedModel {
    let name: String
    /// Runs `bottleneck` frames (decoder + tail).
    let tail: ModelRunner?
    /// Runs `jpeg` frames (the whole model).
    let full: ModelRunner?
    /// Turns a decoded JPEG into the full model's input; present exactly when `full` is.
    let preprocessor: ImagePreprocessor?

    init(name: String, files: WorkerModelFiles, compute: ComputeContext) throws(WorkerError) {
        self.name = name
        func load(_ url: URL?, _ part: String) throws(WorkerError) -> ModelRunner? {
            guard let url else { return nil }
            do throws(EngineError) {
                return try ModelRunner(contentsOf: url, compute: compute)
            } catch {
                throw .model(name: name, reason: "\(part) \(url.path): \(error)")
            }
        }
        tail = try load(files.tail, "tail")
        full = try load(files.full, "full model")
        if let full {
            // The image input must be NCHW with 1 or 3 channels: that is what the preprocessor writes.
            guard full.sampleShape.count == 3 else {
                throw .model(name: name, reason: "the full model's input \(full.sampleShape) is not [C, H, W]")
            }
            do throws(ImagingError) {
                preprocessor = try ImagePreprocessor(
                    channels: full.sampleShape[0], height: full.sampleShape[1], width: full.sampleShape[2],
                    resizeShorterSide: files.resizeShorterSide,
                    normalization: try ImagePreprocessor.Normalization.fromMetadata(full.session.graph.metadata))
            } catch {
                throw .model(name: name, reason: "the full model's input cannot be fed from a JPEG: \(error)")
            }
        } else {
            preprocessor = nil
        }
    }

    /// The runner for a payload kind, if this worker serves that kind for this model.
    func runner(for kind: FrameInputKind) -> ModelRunner? {
        switch kind {
        case .bottleneck: tail
        case .image: full
        }
    }
}
