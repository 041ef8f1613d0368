import ArgumentParser
import BottleFitCore
import BottleFitEngine
import Foundation

struct InferCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "infer",
        abstract: "Run a model on a NumPy .npy input and write the output as .npy.",
        discussion: """
            The input is float32 (or the model's input type), C order, with the batch as its \
            first dimension. The model must have one input and one output.
            Example: bottlefit infer --model head.onnx --input x.npy --output y.npy --threads 2
            """
    )

    @Option(help: "The ONNX model file.") var model: String
    @Option(help: "Input tensor, a .npy file.") var input: String
    @Option(help: "Where to write the output tensor (.npy).") var output: String
    @OptionGroup var threadOptions: ThreadOptions

    func run() throws {
        let session = try InferenceSession(contentsOf: URL(fileURLWithPath: model), compute: threadOptions.makeComputeContext())
        let graph = session.optimizedGraph
        guard graph.inputs.count == 1, graph.outputs.count == 1 else {
            throw CommandError("the model has \(graph.inputs.count) inputs and \(graph.outputs.count) outputs; infer needs exactly one of each")
        }
        let x = try NPY.read(contentsOf: URL(fileURLWithPath: input))
        let v = graph.inputs[0]
        guard x.elementType == v.elementType else {
            throw CommandError("\(input) holds \(x.elementType.rawValue); the model's input '\(v.name)' takes \(v.elementType.rawValue)")
        }
        if let declared = v.shape {
            let fits = declared.count == x.shape.count && zip(declared, x.shape).allSatisfy { d, n in d.fixedValue.map { $0 == n } ?? true }
            guard fits else {
                throw CommandError("\(input) has shape \(x.shape.shapeDescription); the model's input '\(v.name)' takes \(v.shapeDescription)")
            }
        }
        let y = try session.run(x)
        try NPY.write(y, to: URL(fileURLWithPath: output))
    }
}
