import ArgumentParser
import BottleFitCore
import BottleFitEngine
import Foundation

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Time a model: median, p10 and p90 latency and images/s after warm-up.",
        discussion: """
            The input is seeded random data of the model's declared shape with the batch size set. \
            Each run is one planned inference that allocates nothing. With --json, exactly one \
            JSON object is printed: median_ms, p10_ms, p90_ms, images_per_s, batch, threads.
            Example: bottlefit bench --model tail.onnx --batch 8 --threads 2 --runs 20 --json
            """
    )

    @Option(help: "The ONNX model file.") var model: String
    @Option(help: "Batch size.") var batch: Int = 1
    @OptionGroup var threadOptions: ThreadOptions
    @Option(help: "Untimed runs first (and at least 0.25 s of them unless 0).") var warmup: Int = 3
    @Option(help: "Timed runs.") var runs: Int = 10
    @Flag(help: "Print one JSON object instead of text.") var json = false
    @Flag(help: "Also print where the time goes: by operator type and the slowest steps (text mode only).") var profile = false
    @Option(help: "How many of the slowest steps --profile lists.") var profileSteps = 12

    func validate() throws {
        guard !(json && profile) else { throw ValidationError("--profile prints text; it cannot be combined with --json") }
        guard (1...4096).contains(batch) else { throw ValidationError("--batch must be between 1 and 4096") }
        try RunTimer.validate(warmup: warmup, runs: runs)
        guard (0...10_000).contains(profileSteps) else { throw ValidationError("--profile-steps must be 0...10000") }
    }

    func run() throws {
        let compute = threadOptions.makeComputeContext()
        let session = try InferenceSession(contentsOf: URL(fileURLWithPath: model), compute: compute)
        let plan = try session.plan(batch: batch)
        var rng = SeededGenerator(seed: 1)
        for (name, type) in plan.inputTypes {
            guard let buffer = plan.inputBuffer(name) else {
                throw CommandError("input '\(name)' is \(type); bench feeds float32 inputs only")
            }
            for i in buffer.indices { buffer[i] = rng.nextNormal() }
        }
        let times = RunTimer(warmup: warmup, runs: runs).measure { plan.execute() }
        func percentile(_ p: Double) -> Double { RunTimer.percentile(times, p) }
        let median = percentile(0.5)
        let ips = Double(batch) / (median / 1000)
        if json {
            let fields = [
                "\"median_ms\": \(format(median))", "\"p10_ms\": \(format(percentile(0.1)))",
                "\"p90_ms\": \(format(percentile(0.9)))", "\"images_per_s\": \(format(ips))",
                "\"batch\": \(batch)", "\"threads\": \(threadOptions.threads)",
            ]
            print("{" + fields.joined(separator: ", ") + "}")
        } else {
            print("model \(model)  batch \(batch)  threads \(threadOptions.threads)  gemm \(compute.gemm.rawValue)  kernels \(compute.instructionSet)  runs \(runs) after \(warmup) warm-up")
            print(String(format: "median %.3f ms  p10 %.3f ms  p90 %.3f ms  %.1f images/s", median, percentile(0.1), percentile(0.9), ips))
        }
        if profile {
            // Median of several profiled runs, per node, then summed per operator type.
            var samples: [String: [Double]] = [:]
            var order: [String] = []
            for _ in 0..<max(3, min(runs, 10)) {
                for (name, seconds) in plan.executeProfiled() {
                    if samples[name] == nil { order.append(name) }
                    samples[name, default: []].append(seconds)
                }
            }
            let perNode = order.map { name -> (String, Double) in
                let s = samples[name]!.sorted()
                return (name, s[s.count / 2])
            }
            var byType: [String: Double] = [:]
            for (name, s) in perNode { byType[String(name.split(separator: " ").first ?? ""), default: 0] += s }
            let total = byType.values.reduce(0, +)
            print("profile (median per step, ms): total \(format(total * 1000))")
            for (op, s) in byType.sorted(by: { $0.value > $1.value }) {
                print("  " + op.padding(toLength: 22, withPad: " ", startingAt: 0) + String(format: "%9.3f  %5.1f%%", s * 1000, 100 * s / total))
            }
            print("slowest steps:")
            for (name, s) in perNode.sorted(by: { $0.1 > $1.1 }).prefix(profileSteps) {
                // Whole names: the end of a long ONNX name (…/conv2/Conv) tells its steps apart.
                let padded = name.count < 40 ? name.padding(toLength: 40, withPad: " ", startingAt: 0) : name
                print("  " + padded + String(format: "%9.3f", s * 1000))
            }
        }
    }

    private func format(_ v: Double) -> String { String(format: "%.4f", v) }
}
