import ArgumentParser
import BottleFitCore
import BottleFitEngine
import BottleFitImaging
import Foundation

/// `bottlefit bench-device`: measures on a camera board what its load-generator device profile needs
/// (profiles/devices/NAME.yaml) and prints those lines, so a profile is calibrated by running one command there.
struct BenchDeviceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-device",
        abstract: "Measure a camera board for a load-generator device profile: head, whole model and JPEG encode times.",
        discussion: """
            Run it on the board (docs/loadgen.md, "Calibrating a device profile"). It times the head and the \
            whole model (batch 1, seeded random input, median after warm-up, as `bottlefit bench`) and the JPEG \
            encoding of synthetic frames at the model's input size with this project's codec, then prints the \
            profile lines it measured: effective_gflops (2 x the whole model's GMAC / its time), jpeg_encode_ms, \
            a models: entry with head_ms and full_ms for --name, and their sources. Power (active_w, idle_w) and \
            the radio's energy cannot be measured in software: measure them with a USB power meter while this \
            runs (active) and while the board idles.
            Example: bottlefit bench-device --head models/demo/head.onnx --full models/demo/full.onnx --name bf12 --threads 4
            """
    )

    @Option(help: "The head ONNX model (what the camera runs in split mode).") var head: String
    @Option(help: "The whole ONNX model (local mode and fallback).") var full: String
    @Option(help: "Model name for the profile's models: entry (the name FRAMEs carry).") var name = "bf12"
    @Option(help: "JPEG quality of the encode timing (offload mode).") var jpegQuality = 90
    @OptionGroup var threadOptions: ThreadOptions
    @Option(help: "Untimed runs first (and at least 0.25 s of them unless 0).") var warmup: Int = 3
    @Option(help: "Timed runs per measurement.") var runs: Int = 10

    func validate() throws {
        try RunTimer.validate(warmup: warmup, runs: runs)
        guard (1...100).contains(jpegQuality) else { throw ValidationError("--jpeg-quality must be 1...100") }
        guard !name.isEmpty, !name.contains(where: { $0 == ":" || $0 == "\n" || $0 == " " }) else {
            throw ValidationError("--name must be a plain model name")
        }
    }

    func run() throws {
        let compute = threadOptions.makeComputeContext()
        let timer = RunTimer(warmup: warmup, runs: runs)
        let headMs = try medianMilliseconds(model: head, timer: timer, compute: compute).median
        let (fullMs, inputSize, fullMACs) = try medianMilliseconds(model: full, timer: timer, compute: compute)
        let source = try SyntheticFrameSource(width: inputSize, height: inputSize, seed: 1)
        let frames = (0..<8).map { source.image(at: $0) }
        var i = 0
        let jpegTimes = try timer.measure {
            _ = try JPEGCodec.encode(frames[i % frames.count], quality: jpegQuality)
            i += 1
        }
        let jpegMs = RunTimer.percentile(jpegTimes, 0.5)
        let gflops = 2 * Double(fullMACs) / 1e9 / (fullMs / 1000)
        let host = ProcessInfo.processInfo.hostName
        let date = ISO8601DateFormatter().string(from: Date()).prefix(10)
        let how = "measured: bottlefit bench-device on \(host), \(date), \(threadOptions.threads) thread(s), median of \(runs) runs"
        func f(_ v: Double) -> String { String(format: "%.3f", v) }
        print("# Lines for profiles/devices/NAME.yaml (docs/loadgen.md, \"Calibrating a device profile\").")
        print("# Whole model \(full): \(f(Double(fullMACs) / 1e9)) GMAC in \(f(fullMs)) ms; head \(head): \(f(headMs)) ms.")
        print("effective_gflops: \(f(gflops))        # 2 x \(f(Double(fullMACs) / 1e9)) GMAC / \(f(fullMs / 1000)) s")
        print("jpeg_encode_ms: \(f(jpegMs))           # \(inputSize)x\(inputSize) synthetic frames, quality \(jpegQuality)")
        print("active_w: ?                 # measure: board draw while this command runs (USB power meter)")
        print("idle_w: ?                   # measure: board draw while idle")
        print("models:")
        print("  \(name): {head_ms: \(f(headMs)), full_ms: \(f(fullMs)), source: \"\(how)\"}")
        print("sources:")
        print("  effective_gflops: \"\(how): 2 x \(f(Double(fullMACs) / 1e9)) GMAC / \(f(fullMs)) ms\"")
        print("  jpeg_encode_ms: \"\(how)\"")
    }

    /// Median time of one batch-1 inference, the model's square input side and its MACs.
    private func medianMilliseconds(
        model: String, timer: RunTimer, compute: ComputeContext
    ) throws -> (median: Double, inputSize: Int, macs: Int) {
        let graph = try ONNXImporter.load(contentsOf: URL(fileURLWithPath: model))
        let summary = try ModelSummary(graph)
        let shape = try summary.inputs.first.map { try InferenceSession.concreteShape($0, batch: 1) } ?? []
        let session = try InferenceSession(graph: graph, compute: compute)
        let plan = try session.plan(batch: 1)
        var rng = SeededGenerator(seed: 1)
        for (input, type) in plan.inputTypes {
            guard let buffer = plan.inputBuffer(input) else {
                throw CommandError("\(model): input '\(input)' is \(type); bench-device feeds float32 inputs only")
            }
            for i in buffer.indices { buffer[i] = rng.nextNormal() }
        }
        let times = timer.measure { plan.execute() }
        return (RunTimer.percentile(times, 0.5), max(shape.last ?? 224, 8), summary.macs)
    }
}
