import ArgumentParser
import BottleFitCore
import BottleFitEngine
import BottleFitTraining
import Foundation

struct BenchTrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-train",
        abstract: "Time training steps of a recipe stage: median step time and images/s after warm-up.",
        discussion: """
            Each step is a full optimisation step of the stage (forward with a tape, the \
            stage's loss, backward, optimiser update; a teacher forward pass where the stage \
            needs one) on seeded random images of the model's input shape and random labels. \
            Data loading is not included (`bottlefit train` overlaps it with compute). With \
            --json, exactly one JSON object: median_ms, p10_ms, p90_ms, images_per_s, batch, \
            threads, stage.
            Example: bottlefit bench-train --model bottlefit.onnx --teacher teacher.onnx --stage stage1 --batch 128 --threads 2
            """
    )

    @Option(help: "The model being trained (ONNX).") var model: String
    @Option(help: "The teacher (ONNX), for stages that distill (stage1, stage2-kd, hnd).") var teacher: String?
    @Option(help: "Stage: teacher, stage1, stage2, stage2-kd, naive, hnd or autoencoder.") var stage: String = "teacher"
    @Option(help: "Batch size.") var batch: Int = 128
    @Option(help: "Threads (OpenBLAS GEMMs and the engine's own loops).") var threads: Int = 2
    @Option(help: "Untimed steps first.") var warmup: Int = 2
    @Option(help: "Timed steps.") var runs: Int = 10
    @Flag(help: "Print one JSON object instead of text.") var json = false

    func validate() throws {
        guard (2...4096).contains(batch) else { throw ValidationError("--batch must be 2...4096 (at least 2 for batch statistics)") }
        guard (1...256).contains(threads) else { throw ValidationError("--threads must be between 1 and 256") }
        try RunTimer.validate(warmup: warmup, runs: runs)
        guard TrainStages.names.contains(stage) else {
            throw ValidationError("--stage must be one of \(TrainStages.names.joined(separator: ", "))")
        }
    }

    func run() throws {
        TrainingThreads.configure(threads)
        let graph = try ONNXImporter.load(contentsOf: URL(fileURLWithPath: model))
        let stageValue = TrainStages.stage(named: stage, epochs: 1)
        if stageValue.objective.needsTeacher && teacher == nil { throw CommandError("--stage \(stage) needs --teacher") }
        let trainer = Trainer(
            model: try TrainingGraph(graph),
            teacher: try teacher.map { try TrainingGraph(ONNXImporter.load(contentsOf: URL(fileURLWithPath: $0))) })
        guard let input = graph.inputs.first, let dims = input.shape?.dropFirst().compactMap(\.fixedValue), dims.count == 3 else {
            throw CommandError("the model's input must be [batch, C, H, W] with fixed C, H, W")
        }
        var rng = SeededGenerator(seed: 1)
        let classes = graph.outputs.first?.shape?.last?.fixedValue ?? 10
        let images = Buffer(shape: [batch] + dims, data: (0..<(batch * dims.reduce(1, *))).map { _ in rng.nextNormal() })
        let labels = (0..<batch).map { _ in Int32(rng.next() % UInt64(classes)) }
        let step = TrainingBatch(images: images, labels: labels)
        stageValue.configure(trainer.model)
        var optimizer = stageValue.optimizer.make()
        for _ in 0..<warmup { _ = try trainer.step(step, stage: stageValue, optimizer: &optimizer) }
        var times: [Double] = []
        for _ in 0..<runs {
            let start = DispatchTime.now().uptimeNanoseconds
            _ = try trainer.step(step, stage: stageValue, optimizer: &optimizer)
            times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
        }
        times.sort()
        func pct(_ p: Double) -> Double { times[min(times.count - 1, Int((Double(times.count - 1) * p).rounded()))] }
        let median = pct(0.5)
        let rate = Double(batch) / (median / 1000)
        if json {
            print(String(format: "{\"median_ms\": %.3f, \"p10_ms\": %.3f, \"p90_ms\": %.3f, \"images_per_s\": %.1f, \"batch\": %d, \"threads\": %d, \"stage\": \"%@\"}",
                         median, pct(0.1), pct(0.9), rate, batch, threads, stage))
        } else {
            print(String(format: "%@ step, batch %d, %d threads: median %.2f ms (p10 %.2f, p90 %.2f) = %.0f images/s", stage, batch, threads, median, pct(0.1), pct(0.9), rate))
        }
    }
}

/// The recipe stages by name, for commands that run one.
enum TrainStages {
    static let names = ["teacher", "stage1", "stage2", "stage2-kd", "naive", "hnd", "autoencoder"]

    static func stage(named name: String, epochs: Int) -> Stage {
        switch name {
        case "teacher": Recipes.teacher(epochs: epochs)[0]
        case "stage1": Recipes.bottleFitStage1(epochs: epochs)
        case "stage2": Recipes.bottleFitStage2(epochs: epochs, distillation: false)
        case "stage2-kd": Recipes.bottleFitStage2(epochs: epochs, distillation: true)
        case "naive": Recipes.naive(epochs: epochs)[0]
        case "hnd": Recipes.headNetworkDistillation(epochs: epochs)[0]
        default: Recipes.autoencoder(epochs: epochs)[0]
        }
    }
}
