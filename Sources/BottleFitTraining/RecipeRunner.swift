import BottleFitEngine
import Foundation

/// Runs a recipe's stages in order with a checkpoint after every epoch, resuming from the
/// checkpoint when asked (the same recipe only).
public struct RecipeRunner {
    public var recipe: String
    public var stages: [Stage]
    public var checkpoint: Checkpoint
    public var progress: (String) -> Void = { print($0) }
    public var shouldStop: () -> Bool = { false }
    /// Seconds between progress lines within an epoch.
    public var progressInterval: Double = 10
    /// Called after each stage finishes with its index and the model (e.g. to save stage 1).
    public var afterStage: (Int, TrainingGraph) throws -> Void = { _, _ in }

    public init(recipe: String, stages: [Stage], checkpoint: Checkpoint) {
        self.recipe = recipe
        self.stages = stages
        self.checkpoint = checkpoint
    }

    /// Trains `student` (or the checkpoint's model with `resume`); returns the trained model
    /// and the history of every epoch.
    public func run(student: Graph, teacher: Graph?, data: BatchProvider, resume: Bool) throws -> (TrainingGraph, [EpochRecord]) {
        var startStage = 0
        var position = StagePosition()
        var optimizer: (any Optimizer)?
        var history: [EpochRecord] = []
        var graph = student
        if resume {
            guard checkpoint.exists else { throw TrainingError.io("--resume: no checkpoint in \(checkpoint.directory.path)") }
            let probe = try checkpoint.state()
            guard probe.recipe == recipe else {
                throw TrainingError.invalidArgument("--resume: the checkpoint is of '\(probe.recipe)', not '\(recipe)'")
            }
            guard probe.stageIndex <= stages.count else { throw TrainingError.invalidArgument("--resume: checkpoint stage \(probe.stageIndex) of \(stages.count)") }
            let spec = stages[min(probe.stageIndex, stages.count - 1)].optimizer
            let (state, saved, savedOptimizer) = try checkpoint.load(optimizer: spec)
            (startStage, position, history, graph) = (state.stageIndex, state.position, state.history, saved)
            optimizer = position == StagePosition() ? nil : savedOptimizer
            progress("resuming \(recipe) at stage \(min(startStage + 1, stages.count))/\(stages.count), epoch \(position.epoch + 1), batch \(position.batch)")
        }
        let model = try TrainingGraph(graph)
        let teacherModel = try teacher.map { try TrainingGraph($0) }
        let trainer = Trainer(model: model, teacher: teacherModel)
        trainer.progress = progress
        trainer.shouldStop = shouldStop
        trainer.progressInterval = progressInterval
        for index in startStage..<stages.count {
            let stage = stages[index]
            progress("stage \(index + 1)/\(stages.count) \(stage.name): \(stage.epochs) epochs, \(stage.objective.summary), \(stage.optimizer.summary)")
            trainer.saveCheckpoint = { position, optimizer, records in
                try checkpoint.save(
                    model: model, optimizer: optimizer,
                    state: .init(recipe: recipe, stageIndex: index, stageName: stage.name, position: position,
                                 optimizer: stage.optimizer.summary, history: records, savedAt: Date()))
            }
            history = try trainer.run(stage, data: data, from: index == startStage ? position : StagePosition(),
                                      optimizer: index == startStage ? optimizer : nil, history: history)
            try afterStage(index, model)
            // The next stage starts fresh: no optimiser state carries over.
            let next = index + 1
            try checkpoint.save(
                model: model, optimizer: SGD(learningRate: 0),
                state: .init(recipe: recipe, stageIndex: next, stageName: next < stages.count ? stages[next].name : "done",
                             position: StagePosition(), optimizer: "", history: history, savedAt: Date()))
        }
        return (model, history)
    }
}
