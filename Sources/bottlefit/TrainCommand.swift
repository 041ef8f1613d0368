import ArgumentParser
import BottleFitLifecycle
import BottleFitCore
import BottleFitDatasets
import BottleFitEngine
import BottleFitImaging
import BottleFitTraining
import Foundation
import Logging

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a teacher, a BottleFit model (two stages, optional KD) or a baseline, and write ONNX.",
        discussion: """
            Every run writes into --out: full.onnx (and head.onnx, tail.onnx split at the \
            bottleneck when the model has one), history.json (every epoch: loss, accuracy, \
            images/s) and checkpoint/ (after every epoch and on Ctrl-C; --resume continues \
            from it). Progress lines give epoch, loss, accuracy, images/s and ETA.
            Examples:
              bottlefit train teacher --out runs/teacher --epochs 10
              bottlefit train bottlefit --teacher runs/teacher/full.onnx --bottleneck 2 --out runs/bf2
              bottlefit train baseline hnd --teacher runs/teacher/full.onnx --bottleneck 2 --out runs/hnd2
            """,
        subcommands: [TrainTeacherCommand.self, TrainBottleFitCommand.self, TrainBaselineCommand.self]
    )
}

/// Options every training command shares: data, model family, run control.
struct TrainingOptions: ParsableArguments {
    @Option(help: "Where to write models, history and checkpoints.") var out: String
    @Option(help: "Dataset: fashion-mnist (IDX files) or image-folder (--train-folder, --eval-folder).") var dataset: String = "fashion-mnist"
    @Option(help: "Fashion-MNIST directory (Debian package dataset-fashion-mnist).") var dataDir: String = FashionMNIST.defaultDirectory
    @Option(help: "ImageFolder root for training (one folder of JPEGs per class).") var trainFolder: String?
    @Option(help: "ImageFolder root for evaluation.") var evalFolder: String?
    @Option(help: "Model family preset: fashion-mnist (basic-block ResNet, 1x28x28) or imagenet (ResNet-50, 3x224x224).") var preset: String = "fashion-mnist"
    @Option(help: "Override the preset's base width (channels of layer1).") var width: Int?
    @Option(help: "Override the number of classes (default: the dataset's).") var classes: Int?
    @Option(help: "Override the preset's input size in pixels (image-folder data is cropped to it).") var imageSize: Int?
    @Option(help: "Batch size.") var batch: Int = 128
    @Option(help: "Seed for initialisation, data order and augmentation.") var seed: UInt64 = 1
    @Option(help: "Threads (OpenBLAS GEMMs and the engine's loops); data loading runs on its own thread(s).") var threads: Int = 2
    @Option(help: "Threads that decode and augment batches (image-folder JPEGs are the costly case).") var loaderThreads: Int = 1
    @Option(help: "Train on only the first N training images (quick runs).") var limit: Int?
    @Option(help: "Evaluate on only the first N test images.") var evalLimit: Int?
    @Flag(help: "Continue from --out/checkpoint (same command and options).") var resume = false
    @Flag(help: "Fashion-MNIST: no augmentation (random crop with 4-pixel padding and flip are the default).") var noAugment = false
    @Option(help: "Seconds between progress lines within an epoch.") var progressInterval: Double = 15

    func validate() throws {
        guard ["fashion-mnist", "image-folder"].contains(dataset) else { throw ValidationError("--dataset must be fashion-mnist or image-folder") }
        if dataset == "image-folder" && (trainFolder == nil || evalFolder == nil) {
            throw ValidationError("--dataset image-folder needs --train-folder and --eval-folder")
        }
        guard ["fashion-mnist", "imagenet"].contains(preset) else { throw ValidationError("--preset must be fashion-mnist or imagenet") }
        guard (2...4096).contains(batch) else { throw ValidationError("--batch must be 2...4096 (at least 2 for batch statistics)") }
        guard (1...256).contains(threads) else { throw ValidationError("--threads must be between 1 and 256") }
        guard (1...64).contains(loaderThreads) else { throw ValidationError("--loader-threads must be between 1 and 64") }
        // The same bounds as `model create`: beyond them a model cannot be built in memory.
        if let width { guard (1...1024).contains(width) else { throw ValidationError("--width must be between 1 and 1024") } }
        if let classes { guard (1...100_000).contains(classes) else { throw ValidationError("--classes must be between 1 and 100000") } }
        if let imageSize { guard (8...4096).contains(imageSize) else { throw ValidationError("--image-size must be between 8 and 4096") } }
        if dataset == "fashion-mnist" && (imageSize ?? 28) != 28 { throw ValidationError("Fashion-MNIST images are 28x28; --image-size must be 28 or absent") }
        if dataset == "fashion-mnist" && preset != "fashion-mnist" { throw ValidationError("--dataset fashion-mnist needs --preset fashion-mnist (1x28x28 input)") }
        if let limit, limit < batch { throw ValidationError("--limit must be at least the batch size") }
        if let evalLimit, evalLimit < 1 { throw ValidationError("--eval-limit must be positive") }
        guard progressInterval > 0, progressInterval <= 86_400 else { throw ValidationError("--progress-interval must be above 0 and at most 86400 seconds") }
    }

    func data() throws -> DatasetBatches {
        switch dataset {
        case "fashion-mnist":
            return try DatasetBatches.fashionMNIST(
                directory: dataDir, batchSize: batch, seed: seed, limit: limit, testLimit: evalLimit, augment: !noAugment, workers: loaderThreads)
        default:
            return try DatasetBatches.imageFolders(
                train: trainFolder!, eval: evalFolder!, size: configuration(classes: 1).imageSize, batchSize: batch, seed: seed, workers: loaderThreads)
        }
    }

    func configuration(classes datasetClasses: Int) -> ResNetConfiguration {
        var c: ResNetConfiguration = preset == "imagenet" ? .resnet50 : .fashionMNIST
        if let width { c.width = width }
        if let imageSize { c.imageSize = imageSize }
        c.classes = classes ?? datasetClasses
        return c
    }

    /// The options that must match on --resume, as one line.
    var fingerprint: String {
        "dataset=\(dataset) preset=\(preset) width=\(width.map(String.init) ?? "-") size=\(imageSize.map(String.init) ?? "-") batch=\(batch) seed=\(seed) limit=\(limit.map(String.init) ?? "-") augment=\(!noAugment)"
    }
}

/// Runs a recipe end to end: data, checkpoints, Ctrl-C, exports.
enum TrainingRun {
    static func execute(
        options: TrainingOptions, recipe: String, stages: [Stage], student: Graph, teacher: Graph?, partName: String,
        afterStage: @escaping (Int, TrainingGraph) throws -> Void = { _, _ in }
    ) throws {
        // SIGINT and SIGTERM ask the recipe runner to stop (`RecipeRunner.shouldStop`).
        try ProcessLifecycle.runBlocking(logger: Logger(label: "bottlefit.train")) { stop in
            TrainingThreads.configure(options.threads)
            let out = URL(fileURLWithPath: options.out)
            try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
            let data = try options.data()
            var runner = RecipeRunner(recipe: recipe + " " + options.fingerprint, stages: stages, checkpoint: Checkpoint(directory: out.appendingPathComponent("checkpoint")))
            runner.shouldStop = { stop.isRequested }
            runner.progressInterval = options.progressInterval
            runner.afterStage = afterStage
            runner.progress = say
            say("training \(partName): \(recipe); \(data.train.count) training images in \(data.batchesPerEpoch) batches of \(options.batch), \(data.test.count) test images, \(options.threads) threads")
            let (model, history) = try runner.run(student: student, teacher: teacher, data: data, resume: options.resume)
            // The input normalisation goes into the model, so cameras and workers feed it right.
            let normalization = options.dataset == "fashion-mnist" ? FashionMNIST.normalization : ImagePreprocessor.Normalization.imageNet
            try write(model.exportGraph(), history: history, to: out, recipe: recipe, normalization: normalization)
        }
    }

    /// full.onnx, head.onnx + tail.onnx when there is a bottleneck, history.json.
    static func write(
        _ trained: Graph, history: [EpochRecord], to out: URL, recipe: String, normalization: ImagePreprocessor.Normalization
    ) throws {
        var graph = trained
        graph.metadata["bottlefit.training"] = recipe
        graph.metadata.merge(normalization.metadata) { _, new in new }
        try ONNXExporter.write(graph, to: out.appendingPathComponent("full.onnx"))
        var written = ["full.onnx"]
        if let cut = ModelEvaluator.bottleneckName(graph) {
            var g = graph
            g.metadata["bottlefit.bottleneck"] = cut
            let (head, tail) = try ModelSplitter.split(g, at: cut)
            try ONNXExporter.write(head, to: out.appendingPathComponent("head.onnx"))
            try ONNXExporter.write(tail, to: out.appendingPathComponent("tail.onnx"))
            written += ["head.onnx", "tail.onnx"]
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(history).write(to: out.appendingPathComponent("history.json"), options: .atomic)
        let last = history.last.map { String(format: ", test accuracy %.2f%%", 100 * $0.testAccuracy) } ?? ""
        say("wrote \(written.joined(separator: ", ")) and history.json to \(out.path)\(last)")
    }

    static func loadTeacher(_ path: String) throws -> Graph {
        do { return try ONNXImporter.load(contentsOf: URL(fileURLWithPath: path)) } catch { throw CommandError("teacher \(path): \(error)") }
    }

    /// Copies the teacher's parameters into the student where names match (the kept stages).
    static func initialise(_ student: Graph, from teacher: Graph) throws -> Graph {
        let model = try TrainingGraph(student)
        let copied = try model.copyParameters(from: teacher)
        guard !copied.isEmpty else { throw CommandError("no parameter of the teacher matches the student: is --preset/--width the teacher's?") }
        return model.exportGraph()
    }
}

struct TrainTeacherCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "teacher",
        abstract: "Train the unsplit ResNet teacher with cross-entropy (SGD lr 0.1, momentum 0.9, weight decay 5e-4, lr x0.1 at 50% and 75%).",
        discussion: "Example: bottlefit train teacher --out runs/teacher --epochs 10"
    )
    @OptionGroup var options: TrainingOptions
    @Option(help: "Epochs.") var epochs: Int = 10
    @Option(help: "Initial learning rate.") var lr: Float = 0.1

    func validate() throws {
        guard (1...100_000).contains(epochs) else { throw ValidationError("--epochs must be 1...100000") }
        // lr 0 trains nothing and reports success; a NaN or huge one diverges at once.
        guard lr > 0, lr <= 10 else { throw ValidationError("--lr must be above 0 and at most 10 (got \(lr))") }
    }

    func run() throws {
        let classes = try options.data().classCount
        let graph = ModelFactory.resnet(options.configuration(classes: classes), seed: options.seed)
        try TrainingRun.execute(
            options: options, recipe: "teacher epochs=\(epochs) lr=\(lr)", stages: Recipes.teacher(epochs: epochs, learningRate: lr),
            student: graph, teacher: nil, partName: "teacher")
    }
}

struct TrainBottleFitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bottlefit",
        abstract: "Train BottleFit in two stages against a teacher: generalized head network distillation, then fine-tuning.",
        discussion: """
            Stage 1: encoder and decoder learn, the kept stages are frozen copies of the teacher; \
            loss = sum of MSE (reduction sum) at the decoder output (layer2), layer3 and layer4; \
            Adam lr 1e-3, x0.1 at half. Stage 2: the encoder frozen, cross-entropy (or --kd: \
            0.5 CE + 0.5 T^2 KL at T 1); SGD lr 1e-3, momentum 0.9, weight decay 5e-4, x0.1 at \
            half. The model after stage 1 is written to --out/stage1.onnx; --from-stage1 starts \
            stage 2 from such a file (so the KD variant can share stage 1).
            Example: bottlefit train bottlefit --teacher runs/teacher/full.onnx --bottleneck 2 --out runs/bf2 --stage1-epochs 5 --stage2-epochs 5
            """
    )
    @OptionGroup var options: TrainingOptions
    @Option(help: "The trained teacher (ONNX) of the same preset and width.") var teacher: String
    @Option(help: "Bottleneck channels C.") var bottleneck: Int
    @Option(help: "Stage 1 epochs.") var stage1Epochs: Int = 5
    @Option(help: "Stage 2 epochs.") var stage2Epochs: Int = 5
    @Flag(help: "Stage 2 with knowledge distillation from the teacher instead of cross-entropy alone.") var kd = false
    @Option(help: "Stage 2's initial learning rate (the reference's 0.001 by default).") var stage2Lr: Float = 1e-3
    @Option(help: "Skip stage 1: start stage 2 from this stage-1 model (ONNX).") var fromStage1: String?

    func validate() throws {
        guard (1...4096).contains(bottleneck) else { throw ValidationError("--bottleneck must be between 1 and 4096") }
        guard stage1Epochs >= 1 || fromStage1 != nil, stage2Epochs >= 1 else { throw ValidationError("each stage needs at least one epoch") }
        guard stage1Epochs <= 100_000, stage2Epochs <= 100_000 else { throw ValidationError("--stage1-epochs and --stage2-epochs must be at most 100000") }
        guard stage2Lr > 0, stage2Lr <= 10 else { throw ValidationError("--stage2-lr must be above 0 and at most 10 (got \(stage2Lr))") }
    }

    func run() throws {
        let teacherGraph = try TrainingRun.loadTeacher(teacher)
        let config = options.configuration(classes: try options.data().classCount)
        do { try ModelFactory.checkBottleFitResNet(bottleneck: bottleneck, config) } catch { throw CommandError("\(error)") }
        var stages = [Recipes.bottleFitStage2(epochs: stage2Epochs, distillation: kd, learningRate: stage2Lr)]
        var student: Graph
        if let fromStage1 {
            student = try ONNXImporter.load(contentsOf: URL(fileURLWithPath: fromStage1))
        } else {
            stages.insert(Recipes.bottleFitStage1(epochs: stage1Epochs), at: 0)
            student = try TrainingRun.initialise(ModelFactory.bottleFitResNet(bottleneck: bottleneck, config, seed: options.seed), from: teacherGraph)
        }
        let out = URL(fileURLWithPath: options.out)
        let hasStage1 = fromStage1 == nil
        let recipe = "bottlefit c=\(bottleneck) stage1=\(hasStage1 ? String(stage1Epochs) : "from-file") stage2=\(stage2Epochs) kd=\(kd)" + (stage2Lr == 1e-3 ? "" : " stage2-lr=\(stage2Lr)")
        try TrainingRun.execute(
            options: options, recipe: recipe, stages: stages, student: student, teacher: teacherGraph, partName: "BottleFit C=\(bottleneck)",
            afterStage: { index, model in
                if hasStage1 && index == 0 {
                    try ONNXExporter.write(model.exportGraph(), to: out.appendingPathComponent("stage1.onnx"))
                }
            })
    }
}

struct TrainBaselineCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "baseline",
        abstract: "Train one of the paper's baselines: naive, hnd (head network distillation) or autoencoder.",
        discussion: """
            naive: the BottleFit architecture (kept stages from the teacher) trained end to end \
            with cross-entropy only (SGD lr 0.01, momentum 0.9, weight decay 5e-4, x0.1 at half).
            hnd: encoder and decoder learn the teacher's layer2 output (one MSE term, sum), the \
            rest is the frozen teacher (Adam lr 1e-3).
            autoencoder: the frozen teacher with an autoencoder after layer2 (2x2 convolutions \
            down to C channels, mirrored transposed convolutions) trained to reconstruct layer2 \
            (MSE, sum; Adam lr 1e-3).
            Example: bottlefit train baseline autoencoder --teacher runs/teacher/full.onnx --bottleneck 2 --out runs/ae2 --epochs 5
            """
    )
    @OptionGroup var options: TrainingOptions
    @Argument(help: "naive, hnd or autoencoder.") var kind: String
    @Option(help: "The trained teacher (ONNX) of the same preset and width.") var teacher: String
    @Option(help: "Bottleneck channels C.") var bottleneck: Int
    @Option(help: "Epochs.") var epochs: Int = 5

    func validate() throws {
        guard ["naive", "hnd", "autoencoder"].contains(kind) else { throw ValidationError("the baseline must be naive, hnd or autoencoder, not '\(kind)'") }
        guard (1...4096).contains(bottleneck) else { throw ValidationError("--bottleneck must be between 1 and 4096") }
        guard (1...100_000).contains(epochs) else { throw ValidationError("--epochs must be 1...100000") }
    }

    func run() throws {
        let teacherGraph = try TrainingRun.loadTeacher(teacher)
        let config = options.configuration(classes: try options.data().classCount)
        let student: Graph
        let stages: [Stage]
        do {
            switch kind {
            case "autoencoder":
                try ModelFactory.checkAutoencoderResNet(bottleneck: bottleneck, config)
                student = ModelFactory.autoencoderResNet(bottleneck: bottleneck, config, seed: options.seed)
                stages = Recipes.autoencoder(epochs: epochs)
            case "hnd":
                try ModelFactory.checkBottleFitResNet(bottleneck: bottleneck, config)
                student = ModelFactory.bottleFitResNet(bottleneck: bottleneck, config, seed: options.seed)
                stages = Recipes.headNetworkDistillation(epochs: epochs)
            default:
                try ModelFactory.checkBottleFitResNet(bottleneck: bottleneck, config)
                student = ModelFactory.bottleFitResNet(bottleneck: bottleneck, config, seed: options.seed)
                stages = Recipes.naive(epochs: epochs)
            }
        } catch {
            throw CommandError("\(error)")
        }
        try TrainingRun.execute(
            options: options, recipe: "\(kind) c=\(bottleneck) epochs=\(epochs)", stages: stages,
            student: try TrainingRun.initialise(student, from: teacherGraph), teacher: teacherGraph, partName: "\(kind) C=\(bottleneck)")
    }
}

/// Prints a line unbuffered (progress must appear at once even when stdout is a pipe).
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
