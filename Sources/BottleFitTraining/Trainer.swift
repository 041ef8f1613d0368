import Foundation

/// One batch for training or evaluation: NCHW images and their labels.
public struct TrainingBatch: Sendable {
    public var images: Buffer
    public var labels: [Int32]

    public init(images: Buffer, labels: [Int32]) {
        self.images = images
        self.labels = labels
    }
}

/// Where batches come from. The training batches of an epoch must depend only on the
/// epoch number (and a seed the provider holds), so a resumed run sees the same data.
public protocol BatchProvider {
    var batchesPerEpoch: Int { get }
    func trainingBatches(epoch: Int) throws -> AnyIterator<TrainingBatch>
    func evaluationBatches() throws -> AnyIterator<TrainingBatch>
}

/// What one epoch did.
public struct EpochRecord: Codable, Sendable, Equatable {
    public var stage: String
    public var epoch: Int
    public var learningRate: Float
    public var loss: Double
    /// Accuracy on the training batches (nil when the objective has no logits).
    public var trainAccuracy: Double?
    public var testAccuracy: Double
    public var imagesPerSecond: Double
    public var seconds: Double
}

/// Where a stage stands: the next epoch to run and the batches of it already done.
public struct StagePosition: Codable, Sendable, Equatable {
    public var epoch: Int
    public var batch: Int
    public init(epoch: Int = 0, batch: Int = 0) {
        self.epoch = epoch
        self.batch = batch
    }
}

/// Runs training stages on a `TrainingGraph`: forward with a tape, the stage's loss,
/// backward, optimiser step; evaluation after each epoch; a checkpoint after each epoch
/// and when stopped early.
public final class Trainer {
    public let model: TrainingGraph
    public let teacher: TrainingGraph?
    public let inputName: String
    public let logitsName: String
    /// Receives progress lines (epoch, loss, accuracy, images/s, ETA).
    public var progress: (String) -> Void = { _ in }
    /// Polled after every batch; true stops the stage after saving a checkpoint.
    public var shouldStop: () -> Bool = { false }
    /// Called with the position and optimiser after every epoch and when stopping.
    public var saveCheckpoint: (StagePosition, any Optimizer, [EpochRecord]) throws -> Void = { _, _, _ in }
    /// Seconds between progress lines within an epoch.
    public var progressInterval: Double = 10

    public init(model: TrainingGraph, teacher: TrainingGraph? = nil, inputName: String = "input", logitsName: String = "logits") {
        self.model = model
        self.teacher = teacher
        self.inputName = inputName
        self.logitsName = logitsName
    }

    /// Runs `stage` from `position` (a fresh stage starts at epoch 0, batch 0) with
    /// `optimizer` state if resuming; returns the epoch records of this call.
    public func run(
        _ stage: Stage, data: BatchProvider, from position: StagePosition = StagePosition(), optimizer resumed: (any Optimizer)? = nil,
        history: [EpochRecord] = []
    ) throws -> [EpochRecord] {
        if stage.objective.needsTeacher && teacher == nil {
            throw TrainingError.invalidArgument("stage \(stage.name) (\(stage.objective.summary)) needs a teacher model")
        }
        stage.configure(model)
        guard model.trainableCount > 0 else { throw TrainingError.invalidArgument("stage \(stage.name) leaves nothing to train") }
        var optimizer = resumed ?? stage.optimizer.make()
        var records = history
        let schedule = stage.schedule
        let total = data.batchesPerEpoch
        let runStart = Date()
        var batchesRun = 0
        for epoch in position.epoch..<stage.epochs {
            optimizer.learningRate = schedule.learningRate(epoch: epoch)
            let skip = epoch == position.epoch ? position.batch : 0
            var lossSum = 0.0, correct = 0, seen = 0, imagesTimed = 0
            let epochStart = Date()
            var lastReport = Date()
            var index = 0
            let batches = try data.trainingBatches(epoch: epoch)
            while let batch = batches.next() {
                defer { index += 1 }
                if index < skip { continue }
                let (loss, hits) = try step(batch, stage: stage, optimizer: &optimizer)
                lossSum += Double(loss) * Double(batch.labels.count)
                correct += hits ?? 0
                seen += batch.labels.count
                imagesTimed += batch.labels.count
                batchesRun += 1
                if shouldStop() {
                    try saveCheckpoint(StagePosition(epoch: epoch, batch: index + 1), optimizer, records)
                    throw TrainingError.interrupted("stopped in \(stage.name) epoch \(epoch + 1) after batch \(index + 1) of \(total); checkpoint saved")
                }
                if Date().timeIntervalSince(lastReport) >= progressInterval {
                    lastReport = Date()
                    let rate = Double(imagesTimed) / Date().timeIntervalSince(epochStart)
                    let elapsed = Date().timeIntervalSince(runStart)
                    let remainingBatches = (stage.epochs - epoch) * total - (index + 1)
                    let eta = elapsed / Double(max(1, batchesRun)) * Double(max(0, remainingBatches))
                    progress(line(stage, epoch, index + 1, total, lossSum / Double(max(1, seen)), hits: stage.objective.hasLogits ? Double(correct) / Double(max(1, seen)) : nil, rate: rate, eta: eta))
                }
            }
            let seconds = Date().timeIntervalSince(epochStart)
            let test = try evaluate(data)
            let record = EpochRecord(
                stage: stage.name, epoch: epoch + 1, learningRate: optimizer.learningRate, loss: lossSum / Double(max(1, seen)),
                trainAccuracy: stage.objective.hasLogits ? Double(correct) / Double(max(1, seen)) : nil,
                testAccuracy: test.accuracy, imagesPerSecond: Double(imagesTimed) / max(seconds, 1e-9), seconds: seconds)
            records.append(record)
            let elapsed = Date().timeIntervalSince(runStart)
            let eta = elapsed / Double(max(1, batchesRun)) * Double((stage.epochs - epoch - 1) * total)
            progress(line(stage, epoch, total, total, record.loss, hits: record.trainAccuracy, rate: record.imagesPerSecond, eta: eta)
                + String(format: " | test acc %.2f%%", 100 * test.accuracy))
            try saveCheckpoint(StagePosition(epoch: epoch + 1, batch: 0), optimizer, records)
        }
        return records
    }

    private func line(_ stage: Stage, _ epoch: Int, _ batch: Int, _ total: Int, _ loss: Double, hits: Double?, rate: Double, eta: Double) -> String {
        var s = String(format: "[%@] epoch %d/%d batch %d/%d loss %.4f", stage.name, epoch + 1, stage.epochs, batch, total, loss)
        if let hits { s += String(format: " acc %.2f%%", 100 * hits) }
        s += String(format: " %.0f img/s ETA %@", rate, Self.duration(eta))
        return s
    }

    static func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 3600 ? "\(s / 3600)h\(String(format: "%02d", s % 3600 / 60))m" : s >= 60 ? "\(s / 60)m\(String(format: "%02d", s % 60))s" : "\(s)s"
    }

    /// One optimisation step; returns the loss and, when the objective has logits, the
    /// number of correct top-1 predictions.
    public func step(_ batch: TrainingBatch, stage: Stage, optimizer: inout any Optimizer) throws -> (Float, Int?) {
        let inputs = [inputName: batch.images]
        switch stage.objective {
        case .crossEntropy:
            let pass = try model.forward(inputs, outputs: [logitsName], training: true)
            let logits = pass[logitsName]!
            let loss = try Loss.crossEntropy(logits, labels: batch.labels)
            optimizer.step(model, gradients: try model.backward(pass, seeds: [logitsName: loss.gradient]))
            return (loss.value, Loss.correct(logits, labels: batch.labels))
        case .distillation(let alpha, let t):
            let target = try teacher!.forward(inputs, outputs: [logitsName], training: false)[logitsName]!
            let pass = try model.forward(inputs, outputs: [logitsName], training: true)
            let logits = pass[logitsName]!
            let loss = try Loss.distillation(student: logits, teacher: target, labels: batch.labels, alpha: alpha, temperature: t)
            optimizer.step(model, gradients: try model.backward(pass, seeds: [logitsName: loss.gradient]))
            return (loss.value, Loss.correct(logits, labels: batch.labels))
        case .featureDistillation(let pairs, let reduction):
            let targets = try teacher!.forward(inputs, outputs: pairs.map(\.teacher), training: false)
            let pass = try model.forward(inputs, outputs: pairs.map(\.student), training: true)
            var seeds: [String: Buffer] = [:]
            var total: Float = 0
            for pair in pairs {
                let loss = try Loss.meanSquaredError(pass[pair.student]!, target: targets[pair.teacher]!, reduction: reduction)
                total += loss.value
                seeds[pair.student] = loss.gradient
            }
            optimizer.step(model, gradients: try model.backward(pass, seeds: seeds))
            return (total, nil)
        case .reconstruction(let output, let target, let reduction):
            let pass = try model.forward(inputs, outputs: [output, target], training: true)
            let loss = try Loss.meanSquaredError(pass[output]!, target: pass[target]!, reduction: reduction)
            optimizer.step(model, gradients: try model.backward(pass, seeds: [output: loss.gradient]))
            return (loss.value, nil)
        }
    }

    /// Top-1 accuracy of the model (inference mode) over the provider's evaluation set.
    public func evaluate(_ data: BatchProvider) throws -> (accuracy: Double, samples: Int) {
        var correct = 0, seen = 0
        let batches = try data.evaluationBatches()
        while let batch = batches.next() {
            let logits = try model.forward([inputName: batch.images], outputs: [logitsName], training: false)[logitsName]!
            correct += Loss.correct(logits, labels: batch.labels)
            seen += batch.labels.count
        }
        guard seen > 0 else { throw TrainingError.invalidArgument("the evaluation set is empty") }
        return (Double(correct) / Double(seen), seen)
    }
}

extension Objective {
    /// Whether the stage's forward pass produces logits worth scoring.
    public var hasLogits: Bool {
        switch self {
        case .crossEntropy, .distillation: true
        case .featureDistillation, .reconstruction: false
        }
    }
}
