// swift-tools-version: 6.0
// BottleFit: split-computing inference in Swift. See README.md and docs/architecture.md.
import PackageDescription

let package = Package(
    name: "BottleFit",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "bottlefit", targets: ["bottlefit"]),
        .library(name: "BottleFitEngine", targets: ["BottleFitEngine"]),
        .library(name: "BottleFitDatasets", targets: ["BottleFitDatasets"]),
        // For the fuzz targets (Fuzz/Package.swift), which feed these modules' decoders.
        .library(name: "BottleFitCore", targets: ["BottleFitCore"]),
        .library(name: "BottleFitProtocol", targets: ["BottleFitProtocol"]),
        .library(name: "BottleFitImaging", targets: ["BottleFitImaging"]),
        .library(name: "BottleFitLoadgen", targets: ["BottleFitLoadgen"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.28.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
    ],
    targets: [
        // C libraries from Debian, one system library each, prefixed so they never clash.
        .systemLibrary(name: "CBottleFitZMQ", pkgConfig: "libzmq", providers: [.apt(["libzmq3-dev"])]),
        .systemLibrary(name: "CBottleFitOpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CBottleFitMsgPack", pkgConfig: msgpackPkgConfigName(), providers: [.apt(["libmsgpack-dev"])]),
        .systemLibrary(name: "CBottleFitJPEG", pkgConfig: "libjpeg", providers: [.apt(["libjpeg-dev"])]),

        // Tensors, .npy files, the bottleneck quantizer: no C dependency.
        .target(name: "BottleFitCore"),
        // Swift code generated from onnx.proto (see scripts/regenerate-onnx-proto).
        .target(
            name: "ONNXProto",
            dependencies: [.product(name: "SwiftProtobuf", package: "swift-protobuf")],
            exclude: ["README.md"]
        ),
        // The hot kernels (packed GEMM, row max-pooling) in C, each compiled once portably and,
        // on x86-64, once more for AVX-512 with a per-function `target` attribute; the engine's
        // compute context picks one at run time after a CPUID check (docs/architecture.md).
        .target(name: "CBottleFitKernels"),
        // Compiler builtins Swift cannot call (spin-wait pause), as static inline functions.
        .systemLibrary(name: "CBottleFitCPUHints"),
        // The inference engine: graph, ONNX in and out, optimiser, kernels, model builders.
        .target(
            name: "BottleFitEngine",
            dependencies: ["BottleFitCore", "ONNXProto", "CBottleFitOpenBLAS", "CBottleFitKernels", "CBottleFitCPUHints"]
        ),
        // Versions of the linked system libraries (ZeroMQ, msgpack-c, libjpeg, OpenBLAS).
        .target(
            name: "BottleFitSystem",
            dependencies: ["CBottleFitZMQ", "CBottleFitMsgPack", "CBottleFitJPEG", "CBottleFitOpenBLAS"]
        ),
        .executableTarget(
            name: "bottlefit",
            dependencies: [
                "BottleFitCore", "BottleFitEngine", "BottleFitSystem", "BottleFitBroker", "ZeroMQ",
                "BottleFitWorker", "BottleFitDevice", "BottleFitImaging", "BottleFitController",
                "BottleFitProtocol", "CBottleFitZMQ", "BottleFitTraining", "BottleFitDatasets", "BottleFitMetrics",
                "BottleFitMetricsServer", "BottleFitLoadgen", "BottleFitSecurity", "BottleFitFleet", "BottleFitPipelineBench",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        // Topology files, the typed plan of a fleet (each child's command line from the flag names
        // its role command declares), the default fleet, and the supervision of the child processes
        // (start in order, watch, add and drain workers live, stop by PID in reverse order).
        .target(
            name: "BottleFitFleet",
            dependencies: [
                "BottleFitYAML", "BottleFitCore", "BottleFitEngine", "BottleFitMetricsServer",
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        // Unit tests of the fleet library, and of each role command's parser against the argv the plan
        // writes for it (`@testable import bottlefit`: the role commands are the parsers).
        .testTarget(
            name: "BottleFitFleetTests",
            dependencies: ["BottleFitFleet", "bottlefit", "BottleFitSecurity", "ZeroMQ"]
        ),
        // `bottlefit bench-pipeline`'s measurements and its own clients (camera senders, instant and
        // echoing workers, the zmq_proxy baseline, the standalone engine), threads of one process.
        .target(
            name: "BottleFitPipelineBench",
            dependencies: [
                "BottleFitBroker", "BottleFitWorker", "BottleFitProtocol", "BottleFitEngine", "BottleFitCore", "ZeroMQ", "CBottleFitZMQ",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // YAML helpers shared by the topology and scenario readers (duplicate keys with both lines).
        .target(name: "BottleFitYAML", dependencies: [.product(name: "Yams", package: "Yams")]),
        // Training: reverse-mode gradients over engine graphs, losses, optimisers, recipes.
        .target(
            name: "BottleFitTraining",
            dependencies: ["BottleFitCore", "BottleFitEngine", "CBottleFitOpenBLAS"]
        ),
        .testTarget(name: "BottleFitTrainingTests", dependencies: ["BottleFitTraining", "BottleFitEngine", "BottleFitCore"]),
        // Test helpers shared by test targets (a hand-written msgpack encoder for documented and garbage inputs).
        .target(name: "BottleFitTestSupport", path: "Tests/BottleFitTestSupport"),
        .testTarget(name: "BottleFitCoreTests", dependencies: ["BottleFitCore"]),
        .testTarget(
            name: "BottleFitEngineTests",
            dependencies: ["BottleFitEngine", "BottleFitCore", "ONNXProto", "CBottleFitKernels"]
        ),
        // Runs the built `bottlefit` binary (scripts/test builds it first).
        .testTarget(
            name: "BottleFitCLITests",
            dependencies: ["BottleFitEngine", "BottleFitCore", "ONNXProto", "BottleFitImaging", "BottleFitDatasets", "BottleFitLoadgen", "BottleFitProtocol"]
        ),
        // Typed Swift wrapper over libzmq: context, sockets, options, multipart messages, poller.
        .target(name: "ZeroMQ", dependencies: ["CBottleFitZMQ"]),
        .target(
            name: "BottleFitSecurity",
            dependencies: ["ZeroMQ", "BottleFitCore", "BottleFitMetrics", .product(name: "Logging", package: "swift-log")]
        ),
        .testTarget(
            name: "BottleFitSecurityTests",
            dependencies: [
                "BottleFitSecurity", "ZeroMQ", .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The pipeline's wire messages (FRAME, RESULT, ERROR, ...) as msgpack, with bounded decoding.
        .target(name: "BottleFitProtocol", dependencies: ["BottleFitCore", "CBottleFitMsgPack"]),
        .testTarget(name: "ZeroMQTests", dependencies: ["ZeroMQ"]),
        .testTarget(name: "BottleFitProtocolTests", dependencies: ["BottleFitTestSupport", "BottleFitProtocol", "BottleFitCore"]),
        // zlib, for the gzip-compressed IDX files of Fashion-MNIST (Foundation on Linux cannot inflate).
        .systemLibrary(name: "CBottleFitZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // libjpeg behind an error manager that longjmps in C, so a corrupt JPEG is an error code, not exit().
        .target(name: "BottleFitJPEGCodec", dependencies: ["CBottleFitJPEG"]),
        // Camera side: images, JPEG codec, preprocessing to NCHW floats, frame sources.
        .target(name: "BottleFitImaging", dependencies: ["BottleFitCore", "BottleFitJPEGCodec", "CBottleFitZlib"]),
        .testTarget(name: "BottleFitImagingTests", dependencies: ["BottleFitImaging", "BottleFitCore", "CBottleFitZlib"]),
        // Training data: Fashion-MNIST in memory, ImageFolder (JPEG on demand), seeded transforms,
        // a prefetching batch loader, and a PNG encoder for reporting image sizes.
        .target(name: "BottleFitDatasets", dependencies: ["BottleFitCore", "BottleFitImaging", "CBottleFitZlib"]),
        .testTarget(name: "BottleFitDatasetsTests", dependencies: ["BottleFitDatasets", "BottleFitImaging", "BottleFitCore", "CBottleFitZlib"]),
        // Tail worker: DEALER to the broker's backend, decoder + tail with dynamic micro-batching.
        .target(
            name: "BottleFitWorker",
            dependencies: [
                "ZeroMQ", "BottleFitSecurity", "BottleFitProtocol", "BottleFitEngine", "BottleFitCore", "BottleFitImaging", "BottleFitMetrics",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "BottleFitWorkerTests",
            dependencies: [
                "BottleFitWorker", "ZeroMQ", "BottleFitProtocol", "BottleFitEngine", "BottleFitCore", "BottleFitImaging", "BottleFitMetrics",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The camera as a library: a pure policy (split | local | offload), frame accounting, and the
        // runtime loop that owns a DEALER socket and engine sessions (`bottlefit device`, the load generator).
        .target(
            name: "BottleFitDevice",
            dependencies: [
                "ZeroMQ", "BottleFitSecurity", "BottleFitProtocol", "BottleFitEngine", "BottleFitCore", "BottleFitImaging", "BottleFitMetrics",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "BottleFitDeviceTests",
            dependencies: [
                "BottleFitDevice", "ZeroMQ", "BottleFitProtocol", "BottleFitEngine", "BottleFitCore", "BottleFitImaging", "BottleFitMetrics",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The broker: ROUTER frontend (cameras), ROUTER backend (workers), PUB stats; a pure
        // scheduler (fair bounded queue, credit, deadlines, liveness) driven by a socket loop.
        .target(
            name: "BottleFitBroker",
            dependencies: ["ZeroMQ", "BottleFitSecurity", "BottleFitProtocol", "BottleFitCore", "BottleFitMetrics", .product(name: "Logging", package: "swift-log")]
        ),
        .testTarget(
            name: "BottleFitBrokerTests",
            dependencies: ["BottleFitTestSupport", "BottleFitBroker", "BottleFitSecurity", "ZeroMQ", "BottleFitProtocol", "BottleFitCore", "BottleFitMetrics", .product(name: "Logging", package: "swift-log")]
        ),
        // The controller: a pure control law (STATS in, fraction of cameras sent local out) and a loop
        // owning a SUB (broker STATS) and a PUB (DIRECTIVEs to cameras).
        .target(
            name: "BottleFitController",
            dependencies: ["ZeroMQ", "BottleFitSecurity", "BottleFitProtocol", "BottleFitCore", "BottleFitMetrics", .product(name: "Logging", package: "swift-log")]
        ),
        .testTarget(
            name: "BottleFitControllerTests",
            dependencies: [
                "BottleFitController", "BottleFitBroker", "BottleFitSecurity", "ZeroMQ", "BottleFitProtocol", "BottleFitCore", "BottleFitMetrics",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Prometheus text exposition (0.0.4) of counters a process already keeps, and fixed-bucket
        // histograms: values only, no I/O, so every role library can describe its own counters.
        .target(name: "BottleFitMetrics"),
        // The /metrics and /healthz endpoint of every long-running role: a small HTTP/1.1 responder
        // on a thread of its own (docs/metrics.md says why not a package).
        .target(
            name: "BottleFitMetricsServer",
            dependencies: ["BottleFitMetrics", .product(name: "Logging", package: "swift-log")]
        ),
        .testTarget(
            name: "BottleFitMetricsTests",
            dependencies: ["BottleFitTestSupport", "BottleFitMetrics", "BottleFitMetricsServer", "BottleFitCore", .product(name: "Logging", package: "swift-log")]
        ),
        // The load generator: many emulated cameras on one event loop (open loop, HDR histograms), driving
        // the real `CameraPolicy`, with device and uplink profiles, scenarios, thresholds and reports.
        .target(
            name: "BottleFitLoadgen",
            dependencies: [
                "ZeroMQ", "BottleFitProtocol", "BottleFitDevice", "BottleFitCore", "BottleFitImaging", "BottleFitYAML",
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "BottleFitLoadgenTests",
            dependencies: [
                "BottleFitLoadgen", "BottleFitBroker", "BottleFitDevice", "BottleFitProtocol", "ZeroMQ", "BottleFitCore",
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Real `bottlefit` processes (built next to the tests) killed, overloaded and fed garbage mid-stream.
        .testTarget(
            name: "BottleFitPipelineTests",
            dependencies: ["BottleFitTestSupport", "ZeroMQ", "BottleFitProtocol", "BottleFitCore", "BottleFitEngine", "BottleFitMetrics", "BottleFitSecurity"]
        ),
    ],
    swiftLanguageModes: [.v6]
)

import Foundation

/// The pkg-config name of msgpack-c: `msgpack` up to 4.x (Debian 12, `-lmsgpackc`), `msgpack-c` from
/// 6.0 on (Debian 13 and sid, `-lmsgpack-c`; the same C API and `<msgpack.h>`). The newer one where
/// its .pc file is on pkg-config's search path, else the older.
func msgpackPkgConfigName() -> String {
    let environment = ProcessInfo.processInfo.environment
    var directories = (environment["PKG_CONFIG_PATH"] ?? "").split(separator: ":").map(String.init)
    directories += ["/usr/local/lib/pkgconfig", "/usr/local/share/pkgconfig", "/usr/lib/pkgconfig", "/usr/share/pkgconfig"]
    let multiarch = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib")) ?? []
    directories += multiarch.filter { $0.contains("-linux-") }.map { "/usr/lib/\($0)/pkgconfig" }
    let newer = directories.contains { FileManager.default.fileExists(atPath: "\($0)/msgpack-c.pc") }
    return newer ? "msgpack-c" : "msgpack"
}
