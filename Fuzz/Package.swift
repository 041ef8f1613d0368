// swift-tools-version: 5.4
// (5.4 on purpose: from 5.5 SwiftPM renames an executable's `main` to `<Target>_main` for testing,
// and libFuzzer, which brings its own `main`, then fails to link.)
// libFuzzer targets for BottleFit's decoders of untrusted bytes (issue 13). A package of its own so
// that neither the main build nor CI compiles them; scripts/fuzz builds them with
// -sanitize=fuzzer,address into .build-fuzz and runs each for a bounded time. Each target feeds its
// input to the same public entry point the tool uses; Tests/BottleFitCLITests/FuzzCorpusTests.swift
// replays the committed corpus (Tests/Fuzz/corpus/<target>/) through those entry points.
import PackageDescription

let package = Package(
    name: "BottleFitFuzz",
    dependencies: [.package(name: "BottleFit", path: "..")],
    targets: [
        // Wire messages (msgpack): Message.decode, as the broker, workers and cameras call it.
        .executableTarget(name: "FuzzProtocol", dependencies: [.product(name: "BottleFitProtocol", package: "BottleFit")]),
        // ONNX model files: ONNXImporter.decode (protobuf, then the graph and its initializers).
        .executableTarget(name: "FuzzONNX", dependencies: [.product(name: "BottleFitEngine", package: "BottleFit")]),
        // NumPy .npy files: NPY.decode.
        .executableTarget(name: "FuzzNPY", dependencies: [.product(name: "BottleFitCore", package: "BottleFit")]),
        // JPEG frames: JPEGCodec.decode (libjpeg behind the C error manager).
        .executableTarget(name: "FuzzJPEG", dependencies: [.product(name: "BottleFitImaging", package: "BottleFit")]),
        // YAML: load-generator scenarios (Yams, the duplicate-key check, field reading) and schedules.
        .executableTarget(name: "FuzzScenario", dependencies: [.product(name: "BottleFitLoadgen", package: "BottleFit")]),
    ]
)
