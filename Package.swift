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
        .package(url: "https://github.com/apple/swift-log", from: "1.16.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.0"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.34.1"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.0.0"),
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
                "BottleFitMetricsServer", "BottleFitDashboard", "BottleFitLoadgen", "BottleFitSecurity", "BottleFitFleet", "BottleFitPipelineBench",
                "BottleFitLifecycle", "BottleFitLogging",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
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
                "BottleFitYAML", "BottleFitCore", "BottleFitEngine", "BottleFitMetricsServer", "BottleFitLifecycle", "BottleFitLogging",
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        // Unit tests of the fleet library, and of each role command's parser against the argv the plan
        // writes for it (`@testable import bottlefit`: the role commands are the parsers).
        .testTarget(
            name: "BottleFitFleetTests",
            dependencies: ["BottleFitTestSupport", "BottleFitFleet", "bottlefit", "BottleFitSecurity", "ZeroMQ"]
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
        // Test helpers shared by test targets (a hand-written msgpack encoder for documented and garbage
        // inputs, raw HTTP, the `.blocking` trait for suites that wait on processes and sockets).
        .target(name: "BottleFitTestSupport", dependencies: ["BottleFitLifecycle"], path: "Tests/BottleFitTestSupport"),
        .testTarget(name: "BottleFitCoreTests", dependencies: ["BottleFitCore"]),
        .testTarget(
            name: "BottleFitEngineTests",
            dependencies: ["BottleFitEngine", "BottleFitCore", "ONNXProto", "CBottleFitKernels"]
        ),
        // Runs the built `bottlefit` binary (scripts/test builds it first).
        .testTarget(
            name: "BottleFitCLITests",
            dependencies: ["BottleFitTestSupport", "BottleFitEngine", "BottleFitCore", "ONNXProto", "BottleFitImaging", "BottleFitDatasets", "BottleFitLoadgen", "BottleFitProtocol"]
        ),
        // Typed Swift wrapper over libzmq: context, sockets, options, multipart messages, poller.
        .target(name: "ZeroMQ", dependencies: ["CBottleFitZMQ"]),
        .target(
            name: "BottleFitSecurity",
            dependencies: ["ZeroMQ", "BottleFitCore", "BottleFitMetrics", .product(name: "Logging", package: "swift-log")]
        ),
        .testTarget(
            name: "BottleFitSecurityTests",
            dependencies: ["BottleFitTestSupport", 
                "BottleFitSecurity", "ZeroMQ", .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The pipeline's wire messages (FRAME, RESULT, ERROR, ...) as msgpack, with bounded decoding.
        .target(name: "BottleFitProtocol", dependencies: ["BottleFitCore", "CBottleFitMsgPack"]),
        .testTarget(name: "ZeroMQTests", dependencies: ["BottleFitTestSupport", "ZeroMQ"]),
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
        .testTarget(name: "BottleFitDatasetsTests", dependencies: ["BottleFitTestSupport", "BottleFitDatasets", "BottleFitImaging", "BottleFitCore", "CBottleFitZlib"]),
        // Tail worker: DEALER to the broker's backend, decoder + tail with dynamic micro-batching.
        .target(
            name: "BottleFitWorker",
            dependencies: [
                "ZeroMQ", "BottleFitLifecycle", "BottleFitSecurity", "BottleFitProtocol", "BottleFitEngine", "BottleFitCore", "BottleFitImaging", "BottleFitMetrics",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "BottleFitWorkerTests",
            dependencies: ["BottleFitTestSupport", 
                "BottleFitWorker", "ZeroMQ", "BottleFitProtocol", "BottleFitEngine", "BottleFitCore", "BottleFitImaging", "BottleFitMetrics",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The camera as a library: a pure policy (split | local | offload), frame accounting, and the
        // runtime loop that owns a DEALER socket and engine sessions (`bottlefit device`, the load generator).
        .target(
            name: "BottleFitDevice",
            dependencies: [
                "ZeroMQ", "BottleFitLifecycle", "BottleFitSecurity", "BottleFitProtocol", "BottleFitEngine", "BottleFitCore", "BottleFitImaging", "BottleFitMetrics",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "BottleFitDeviceTests",
            dependencies: ["BottleFitTestSupport", 
                "BottleFitDevice", "ZeroMQ", "BottleFitProtocol", "BottleFitEngine", "BottleFitCore", "BottleFitImaging", "BottleFitMetrics",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The broker: ROUTER frontend (cameras), ROUTER backend (workers), PUB stats; a pure
        // scheduler (fair bounded queue, credit, deadlines, liveness) driven by a socket loop.
        .target(
            name: "BottleFitBroker",
            dependencies: ["ZeroMQ", "BottleFitLifecycle", "BottleFitSecurity", "BottleFitProtocol", "BottleFitCore", "BottleFitMetrics", .product(name: "Logging", package: "swift-log")]
        ),
        .testTarget(
            name: "BottleFitBrokerTests",
            dependencies: ["BottleFitTestSupport", "BottleFitBroker", "BottleFitSecurity", "ZeroMQ", "BottleFitProtocol", "BottleFitCore", "BottleFitMetrics", .product(name: "Logging", package: "swift-log")]
        ),
        // The controller: a pure control law (STATS in, fraction of cameras sent local out) and a loop
        // owning a SUB (broker STATS) and a PUB (DIRECTIVEs to cameras).
        .target(
            name: "BottleFitController",
            dependencies: ["ZeroMQ", "BottleFitLifecycle", "BottleFitSecurity", "BottleFitProtocol", "BottleFitCore", "BottleFitMetrics", .product(name: "Logging", package: "swift-log")]
        ),
        .testTarget(
            name: "BottleFitControllerTests",
            dependencies: ["BottleFitTestSupport", 
                "BottleFitController", "BottleFitBroker", "BottleFitSecurity", "ZeroMQ", "BottleFitProtocol", "BottleFitCore", "BottleFitMetrics",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // One way to run a role: its blocking loop on a thread of its own, as a swift-service-lifecycle
        // `Service` (start, graceful drain on SIGTERM/SIGINT, stop in reverse order in a `ServiceGroup`).
        .target(
            name: "BottleFitLifecycle",
            dependencies: [
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "BottleFitLifecycleTests",
            dependencies: ["BottleFitTestSupport", 
                "BottleFitLifecycle", .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Log output: a swift-log handler writing one JSON object per line (or text), and the merging of
        // several processes' log lines into one stream in either format (`bottlefit up`).
        .target(name: "BottleFitLogging", dependencies: [.product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "BottleFitLoggingTests", dependencies: ["BottleFitLogging", .product(name: "Logging", package: "swift-log")]),
        // Prometheus text exposition (0.0.4) of counters a process already keeps, and fixed-bucket
        // histograms: values only, no I/O, so every role library can describe its own counters.
        .target(name: "BottleFitMetrics"),
        // The HTTP endpoint of every long-running role (/metrics, /healthz, the controller's
        // dashboard) on Hummingbird, with the bounds of docs/metrics.md around NIO's HTTP/1.1 decoder.
        .target(
            name: "BottleFitMetricsServer",
            dependencies: [
                "BottleFitMetrics", .product(name: "Logging", package: "swift-log"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .testTarget(
            name: "BottleFitMetricsTests",
            dependencies: ["BottleFitTestSupport", "BottleFitMetrics", "BottleFitMetricsServer", "BottleFitCore", .product(name: "Logging", package: "swift-log")]
        ),
        // The controller's live dashboard: one self-contained page (`/`) and its JSON (`/api/state`),
        // served by the controller's metrics endpoint.
        .target(name: "BottleFitDashboard", dependencies: ["BottleFitController", "BottleFitMetricsServer"]),
        .testTarget(
            name: "BottleFitDashboardTests",
            dependencies: [
                "BottleFitTestSupport", "BottleFitDashboard", "BottleFitController", "BottleFitBroker", "BottleFitMetricsServer",
                "BottleFitProtocol", "ZeroMQ", .product(name: "Logging", package: "swift-log"),
            ]
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
            dependencies: ["BottleFitTestSupport", 
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
