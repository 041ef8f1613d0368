import BottleFitCore
import BottleFitEngine
import Foundation

/// A training checkpoint: a directory with the model (`model.onnx`, parameters and
/// BatchNormalization statistics), the optimiser state (`optimizer.onnx`, an ONNX file of
/// initializers only) and `state.json` (which stage, where in it, the history).
///
/// Writes are atomic: a new checkpoint is written beside the old one and swapped in by
/// renames, so an interrupted write (Ctrl-C, kill) leaves the previous checkpoint usable.
public struct Checkpoint {
    public struct State: Codable, Sendable, Equatable {
        /// The command that started the run (recipe and options), to refuse a mismatched resume.
        public var recipe: String
        public var stageIndex: Int
        public var stageName: String
        public var position: StagePosition
        public var optimizer: String
        public var history: [EpochRecord]
        public var savedAt: Date
    }

    public let directory: URL

    public init(directory: URL) {
        self.directory = directory
    }

    private var staging: URL { directory.deletingLastPathComponent().appendingPathComponent(directory.lastPathComponent + ".new") }
    private var previous: URL { directory.deletingLastPathComponent().appendingPathComponent(directory.lastPathComponent + ".old") }

    /// Writes model, optimiser state and `state` atomically.
    public func save(model: TrainingGraph, optimizer: any Optimizer, state: State) throws {
        let fm = FileManager.default
        try? fm.removeItem(at: staging)
        try fm.createDirectory(at: staging, withIntermediateDirectories: true)
        try ONNXExporter.write(model.exportGraph(), to: staging.appendingPathComponent("model.onnx"))
        let optimizerGraph = Graph(
            name: "optimizer-state", nodes: [], inputs: [], outputs: [],
            initializers: optimizer.state.mapValues(\.tensor).merging(["learning_rate": Tensor(shape: [1], floats: [optimizer.learningRate])]) { a, _ in a })
        try ONNXExporter.write(optimizerGraph, to: staging.appendingPathComponent("optimizer.onnx"))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        try encoder.encode(state).write(to: staging.appendingPathComponent("state.json"))
        try? fm.removeItem(at: previous)
        if fm.fileExists(atPath: directory.path) { try fm.moveItem(at: directory, to: previous) }
        try fm.moveItem(at: staging, to: directory)
        try? fm.removeItem(at: previous)
    }

    /// Whether a checkpoint exists (also one left as `.old` by a write cut short).
    public var exists: Bool { location != nil }

    private var location: URL? {
        let fm = FileManager.default
        for url in [directory, previous] where fm.fileExists(atPath: url.appendingPathComponent("state.json").path) { return url }
        return nil
    }

    /// Reads only `state.json` (which recipe, which stage): enough to check a resume.
    public func state() throws -> State {
        guard let url = location else { throw TrainingError.io("no checkpoint in \(directory.path)") }
        return try readState(url)
    }

    private func readState(_ url: URL) throws -> State {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        let path = url.appendingPathComponent("state.json").path
        let data: Data
        do { data = Data(try FileBytes.contents(of: path, maxBytes: 1 << 20)) } catch { throw TrainingError.io(error.description) }
        do { return try decoder.decode(State.self, from: data) } catch {
            throw TrainingError.io("\(path) is not a checkpoint state this version writes (damaged, or from another tool)")
        }
    }

    /// Reads the checkpoint: the state, the model graph and the optimiser (rebuilt from its spec).
    public func load(optimizer spec: OptimizerSpec) throws -> (State, Graph, any Optimizer) {
        guard let url = location else { throw TrainingError.io("no checkpoint in \(directory.path)") }
        let state = try readState(url)
        let graph = try ONNXImporter.load(contentsOf: url.appendingPathComponent("model.onnx"))
        let optimizerPath = url.appendingPathComponent("optimizer.onnx").path
        let stateBytes: [UInt8]
        do { stateBytes = try FileBytes.contents(of: optimizerPath, maxBytes: Int(Int32.max)) } catch { throw TrainingError.io(error.description) }
        let stateGraph = try ONNXImporter.decode(Data(stateBytes), checkOpset: false)
        var optimizer = spec.make()
        var tensors: [String: Buffer] = [:]
        for (name, tensor) in stateGraph.initializers where name != "learning_rate" { tensors[name] = try Buffer(tensor) }
        optimizer.state = tensors
        if let lr = stateGraph.initializers["learning_rate"]?.floats?.first { optimizer.learningRate = lr }
        return (state, graph, optimizer)
    }
}
