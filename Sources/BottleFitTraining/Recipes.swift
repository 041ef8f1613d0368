/// The training recipes of BottleFit and the baselines it is compared with, as stages.
/// Learning rates and schedules follow the reference configurations where they exist
/// (see docs/training.md for each choice).
public enum Recipes {
    /// Value names shared by teacher and student: the decoder restores `layer2`.
    public static let distilledStages = ["layer2", "layer3", "layer4"]

    /// The teacher from scratch: cross-entropy, SGD lr 0.1, momentum 0.9, weight decay
    /// 5e-4, lr × 0.1 at 50% and 75% of the epochs.
    public static func teacher(epochs: Int, learningRate: Float = 0.1) -> [Stage] {
        [Stage(
            name: "teacher", epochs: epochs, objective: .crossEntropy,
            optimizer: .sgd(learningRate: learningRate, momentum: 0.9, weightDecay: 5e-4),
            milestones: [epochs / 2, epochs * 3 / 4].filter { $0 > 0 })]
    }

    /// BottleFit stage 1, generalized head network distillation: encoder and decoder learn,
    /// everything after them is frozen; loss = Σ MSE (reduction sum) between student and
    /// teacher at the decoder output (layer2), layer3 and layer4. Adam lr 1e-3, × 0.1 at half.
    public static func bottleFitStage1(epochs: Int) -> Stage {
        Stage(
            name: "stage1", epochs: epochs, trainablePrefixes: ["encoder.", "decoder."],
            objective: .featureDistillation(pairs: distilledStages.map { .init(student: $0, teacher: $0) }, reduction: .sum),
            optimizer: .adam(learningRate: 1e-3, weightDecay: 0), milestones: [epochs / 2].filter { $0 > 0 })
    }

    /// BottleFit stage 2: the encoder frozen, the rest fine-tuned with cross-entropy (or the
    /// KD variant: α = 0.5, T = 1). SGD lr 1e-3, momentum 0.9, weight decay 5e-4, × 0.1 at half.
    public static func bottleFitStage2(epochs: Int, distillation: Bool, learningRate: Float = 1e-3) -> Stage {
        Stage(
            name: distillation ? "stage2-kd" : "stage2", epochs: epochs, frozenPrefixes: ["encoder."],
            objective: distillation ? .distillation(alpha: 0.5, temperature: 1) : .crossEntropy,
            optimizer: .sgd(learningRate: learningRate, momentum: 0.9, weightDecay: 5e-4), milestones: [epochs / 2].filter { $0 > 0 })
    }

    /// Naive baseline: the bottlenecked model (kept stages initialised from the teacher)
    /// trained end to end with cross-entropy only. SGD lr 0.01, momentum 0.9, weight decay
    /// 5e-4, × 0.1 at half — the teacher's optimiser at a fine-tuning learning rate.
    public static func naive(epochs: Int) -> [Stage] {
        [Stage(
            name: "naive", epochs: epochs, objective: .crossEntropy,
            optimizer: .sgd(learningRate: 0.01, momentum: 0.9, weightDecay: 5e-4), milestones: [epochs / 2].filter { $0 > 0 })]
    }

    /// Head network distillation: encoder and decoder learn to reproduce the teacher's
    /// layer2 output (one MSE term, reduction sum); the rest is the frozen teacher.
    public static func headNetworkDistillation(epochs: Int) -> [Stage] {
        [Stage(
            name: "hnd", epochs: epochs, trainablePrefixes: ["encoder.", "decoder."],
            objective: .featureDistillation(pairs: [.init(student: "layer2", teacher: "layer2")], reduction: .sum),
            optimizer: .adam(learningRate: 1e-3, weightDecay: 0), milestones: [epochs / 2].filter { $0 > 0 })]
    }

    /// Autoencoder baseline: an autoencoder inserted after layer2 of the frozen teacher
    /// learns to reconstruct layer2 (MSE, reduction sum). Adam lr 1e-3, × 0.1 at half.
    public static func autoencoder(epochs: Int) -> [Stage] {
        [Stage(
            name: "autoencoder", epochs: epochs, trainablePrefixes: ["autoencoder."],
            objective: .reconstruction(output: "layer2.reconstructed", target: "layer2", reduction: .sum),
            optimizer: .adam(learningRate: 1e-3, weightDecay: 0), milestones: [epochs / 2].filter { $0 > 0 })]
    }
}
