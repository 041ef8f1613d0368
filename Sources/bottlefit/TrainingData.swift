import BottleFitDatasets
import BottleFitTraining
import Foundation

/// The data a training command reads: Fashion-MNIST from its IDX files, or an ImageFolder
/// tree (ImageNet layout) for training and another for evaluation.
struct DatasetBatches: BatchProvider {
    let train: any LabelledImageSource
    let test: any LabelledImageSource
    let trainTransform: TransformPipeline
    let testTransform: TransformPipeline
    let batchSize: Int
    let seed: UInt64
    let workers: Int

    var batchesPerEpoch: Int { train.count / batchSize }
    var classCount: Int { train.classNames.count }

    func trainingBatches(epoch: Int) throws -> AnyIterator<TrainingBatch> {
        let loader = try BatchLoader(
            source: train, transform: trainTransform, batchSize: batchSize, seed: seed, epoch: epoch, shuffle: true,
            dropLast: true, workers: workers)
        return Self.adapt(loader)
    }

    func evaluationBatches() throws -> AnyIterator<TrainingBatch> {
        Self.adapt(try BatchLoader.evaluation(source: test, transform: testTransform, batchSize: 500, workers: workers))
    }

    static func adapt(_ loader: BatchLoader) -> AnyIterator<TrainingBatch> {
        AnyIterator {
            guard let b = loader.next() else { return nil }
            return TrainingBatch(images: Buffer(shape: b.shape, data: b.images), labels: b.labels)
        }
    }

    /// Fashion-MNIST (train and test), optionally only the first `limit` / `testLimit` images.
    static func fashionMNIST(
        directory: String, batchSize: Int, seed: UInt64, limit: Int?, testLimit: Int?, augment: Bool, workers: Int
    ) throws -> DatasetBatches {
        let train = try FashionMNIST.load(.train, directory: directory)
        let test = try FashionMNIST.load(.test, directory: directory)
        return DatasetBatches(
            train: try train.prefix(limit ?? train.count), test: try test.prefix(testLimit ?? test.count),
            trainTransform: augment ? .fashionMNISTTraining() : .fashionMNISTEvaluation(), testTransform: .fashionMNISTEvaluation(),
            batchSize: batchSize, seed: seed, workers: workers)
    }

    /// ImageFolder trees with torchvision's ImageNet transforms at `size` pixels.
    static func imageFolders(train: String, eval: String, size: Int, batchSize: Int, seed: UInt64, workers: Int) throws -> DatasetBatches {
        let resize = size * 256 / 224
        return DatasetBatches(
            train: try ImageFolder(root: train), test: try ImageFolder(root: eval),
            trainTransform: try .imageNetTraining(size: size), testTransform: try .imageNetEvaluation(resize: resize, crop: size),
            batchSize: batchSize, seed: seed, workers: workers)
    }
}

