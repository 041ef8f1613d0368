import ArgumentParser
import BottleFitDatasets
import Foundation

struct DatasetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dataset",
        abstract: "Describe Fashion-MNIST: images per split, raw bytes per image and the mean PNG size.",
        discussion: """
            The PNG size is of each test image encoded losslessly as 8-bit greyscale PNG \
            (zlib level 9, libpng's filter heuristic): the compressed size a camera could send \
            without any DNN. With --json, one JSON object: train_images, test_images, \
            raw_bytes, png_bytes_mean, png_bytes_min, png_bytes_max, classes.
            Example: bottlefit dataset --json
            """
    )

    @Option(help: "Fashion-MNIST directory (Debian package dataset-fashion-mnist).") var dataDir: String = FashionMNIST.defaultDirectory
    @Flag(help: "Print one JSON object instead of text.") var json = false

    func run() throws {
        let train = try FashionMNIST.load(.train, directory: dataDir)
        let test = try FashionMNIST.load(.test, directory: dataDir)
        let sizes = (0..<test.count).map { PNGSize.bytes(of: test, at: $0) }
        let mean = Double(sizes.reduce(0, +)) / Double(sizes.count)
        let raw = test.elementCount
        if json {
            print(String(format: "{\"train_images\": %d, \"test_images\": %d, \"raw_bytes\": %d, \"png_bytes_mean\": %.2f, \"png_bytes_min\": %d, \"png_bytes_max\": %d, \"classes\": %d}",
                         train.count, test.count, raw, mean, sizes.min()!, sizes.max()!, test.classNames.count))
        } else {
            print("Fashion-MNIST in \(dataDir): \(train.count) training and \(test.count) test images, \(test.classNames.count) classes")
            print(String(format: "raw: %d bytes per image (%dx%dx%d uint8); PNG: mean %.1f bytes (min %d, max %d) over the test images",
                         raw, test.channels, test.height, test.width, mean, sizes.min()!, sizes.max()!))
        }
    }
}
