/// What a training stage minimises.
public enum Objective: Sendable, Equatable {
    /// Cross-entropy of the student's logits against the labels.
    case crossEntropy
    /// Knowledge distillation against the teacher's logits:
    /// α·CE + (1 − α)·T²·KL(softmax(t/T) ‖ softmax(s/T)).
    case distillation(alpha: Float, temperature: Float)
    /// Σ MSE between student values and teacher values of the same shape (generalized head
    /// network distillation: decoder output and each kept stage; plain HND: one pair).
    case featureDistillation(pairs: [FeaturePair], reduction: Loss.Reduction)
    /// MSE between two values of the student itself (an autoencoder learning to
    /// reconstruct a frozen feature map: `output` against `target`).
    case reconstruction(output: String, target: String, reduction: Loss.Reduction)

    public struct FeaturePair: Sendable, Equatable, Codable {
        public var student: String
        public var teacher: String
        public init(student: String, teacher: String) {
            self.student = student
            self.teacher = teacher
        }
    }

    /// Whether the stage needs the teacher's forward pass.
    public var needsTeacher: Bool {
        switch self {
        case .crossEntropy, .reconstruction: false
        case .distillation, .featureDistillation: true
        }
    }

    public var summary: String {
        switch self {
        case .crossEntropy: "cross-entropy"
        case .distillation(let a, let t): "KD (α \(a), T \(t))"
        case .featureDistillation(let pairs, let r): "MSE-\(r.rawValue) at " + pairs.map(\.student).joined(separator: ", ")
        case .reconstruction(let o, let t, let r): "MSE-\(r.rawValue) reconstruction \(o) → \(t)"
        }
    }
}

/// The optimiser a stage uses.
public enum OptimizerSpec: Sendable, Equatable, Codable {
    case sgd(learningRate: Float, momentum: Float, weightDecay: Float)
    case adam(learningRate: Float, weightDecay: Float)

    public var learningRate: Float {
        switch self {
        case .sgd(let lr, _, _), .adam(let lr, _): lr
        }
    }

    public func make() -> any Optimizer {
        switch self {
        case .sgd(let lr, let m, let wd): SGD(learningRate: lr, momentum: m, weightDecay: wd)
        case .adam(let lr, let wd): Adam(learningRate: lr, weightDecay: wd)
        }
    }

    public var summary: String {
        switch self {
        case .sgd(let lr, let m, let wd): "SGD lr \(lr) momentum \(m) weight decay \(wd)"
        case .adam(let lr, let wd): "Adam lr \(lr)" + (wd > 0 ? " weight decay \(wd)" : "")
        }
    }
}

/// One training stage: which parameters learn, against what, with what, for how long.
public struct Stage: Sendable, Equatable {
    public var name: String
    public var epochs: Int
    /// Prefixes of the parameters that learn; nil: all of them.
    public var trainablePrefixes: [String]?
    /// Prefixes frozen on top of that.
    public var frozenPrefixes: [String]
    public var objective: Objective
    public var optimizer: OptimizerSpec
    /// Epochs (0-based, within the stage) at which the learning rate is multiplied by `gamma`.
    public var milestones: [Int]
    public var gamma: Float

    public init(
        name: String, epochs: Int, trainablePrefixes: [String]? = nil, frozenPrefixes: [String] = [],
        objective: Objective, optimizer: OptimizerSpec, milestones: [Int] = [], gamma: Float = 0.1
    ) {
        self.name = name
        self.epochs = epochs
        self.trainablePrefixes = trainablePrefixes
        self.frozenPrefixes = frozenPrefixes
        self.objective = objective
        self.optimizer = optimizer
        self.milestones = milestones
        self.gamma = gamma
    }

    /// Applies this stage's freezing to a model.
    public func configure(_ model: TrainingGraph) {
        if let prefixes = trainablePrefixes { model.train(onlyPrefixes: prefixes) } else { model.unfreezeAll() }
        model.freeze(prefixes: frozenPrefixes)
    }

    public var schedule: MultiStepSchedule {
        MultiStepSchedule(base: optimizer.learningRate, milestones: milestones, gamma: gamma)
    }
}
