import ArgumentParser
import BottleFitFleet
import BottleFitLifecycle
import BottleFitSecurity
import BottleFitDevice
import BottleFitEngine
import BottleFitImaging
import Foundation
import Logging
import ZeroMQ

struct DeviceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: RoleCommandName.camera,
        abstract: "Run a camera: read frames, run the head, send bottlenecks; compute locally when the edge cannot.",
        discussion: """
            Modes (as compared in the BottleFit paper): split runs the head and sends the uint8 \
            bottleneck; local runs the whole model on the camera; offload sends the JPEG for the edge \
            to run the whole model. In split and offload the camera tells four states of the edge \
            apart (docs/device.md): healthy (every frame to the edge); congested, after BUSY, EXPIRED \
            or answers too late for the frame's deadline (--slo-ms): it sends a smaller share of its \
            frames, computes the rest locally and still sends one at least every --probe-ms, so it \
            is back within about 2 s of capacity returning; starting (UNKNOWN_MODEL: no worker for \
            the model yet): local, probing every 250 ms; dead (the broker silent for --liveness \
            heartbeats, gone, or not connected): local until the broker answers again, with no \
            back-off. With --full a frame the edge fails is always computed locally (late if it \
            must be), never dropped. It obeys the controller's directives (--directives), including \
            its cap on the share of frames sent to the edge. Every frame ends completed on the edge, \
            completed locally, or dropped with a reason; the counts are printed at the end. Every \
            --latency-report-ms the camera reports the end-to-end latency of its edge frames (p50, \
            p95, p99, frames completed and missed) to the broker, which relays it to the controller.
            --metrics HOST:PORT serves the counts as Prometheus text on GET /metrics (frames per \
            outcome, drop reason and path, latency histograms) and GET /healthz (503 while the \
            models load and while it drains); see docs/metrics.md.
            Sources: synthetic (seeded moving pattern), dir:PATH (JPEG files, corrupt ones skipped and \
            counted), fashion-mnist (Debian's dataset-fashion-mnist, labelled: accuracy is reported).
            The run ends after --frames frames, after --duration seconds, or on SIGINT/SIGTERM.
            Defaults: --mode split, --source synthetic, as fast as possible, --slo-ms 250, \
            --heartbeat-ms 1000, --liveness 3, --probe-ms 1000, --latency-report-ms 1000, --threads 1, \
            no --metrics.
            Example: bottlefit device --broker tcp://127.0.0.1:5555 --id cam1 --model bf12 --head head.onnx --full full.onnx --source synthetic --rate 10 --duration 30 --metrics 127.0.0.1:9520
            """
    )

    @Option(name: .role(CommonFlags.broker), help: "The broker's frontend endpoint (split and offload modes).") var broker: String?
    @Option(name: .role(DeviceFlags.directives), help: "The controller's directive endpoint to subscribe to.") var directives: String?
    @Option(name: .role(CommonFlags.id), help: "Camera id (1 to 128 bytes).") var id = "camera-\(ProcessInfo.processInfo.processIdentifier)"
    @Option(name: .role(DeviceFlags.mode), help: "Mode: split, local or offload.") var mode = "split"
    @Option(name: .role(CommonFlags.model), help: "Model name the edge serves.") var model: String
    @Option(name: .role(DeviceFlags.head), help: "Head ONNX (split mode).") var head: String?
    @Option(name: .role(DeviceFlags.full), help: "Full-model ONNX (local mode, and the fallback in the others).") var full: String?
    @Option(name: .role(DeviceFlags.source), help: "Frame source: synthetic, dir:PATH or fashion-mnist.") var source = "synthetic"
    @Option(name: .role(DeviceFlags.rate), help: "Frames per second (default: as fast as the camera can).") var rate: Double?
    @Option(help: "Stop after this many frames.") var frames: Int?
    @Option(help: "Stop after this many seconds.") var duration: Double?
    @Option(name: .role(CommonFlags.sloMs), help: "Latency objective per frame in milliseconds (the frame's deadline).") var sloMs: UInt64 = 250
    @Option(help: "Heartbeat interval in milliseconds.") var heartbeatMs: UInt64 = 1000
    @Option(help: "Heartbeats the broker may miss before the camera computes locally.") var liveness: UInt64 = 3
    @Option(help: "Longest time in milliseconds without a frame to a congested edge, 1 to 1000.") var probeMs: UInt64 = 1000
    @Option(help: "Milliseconds between the latency reports sent to the broker (0: none).") var latencyReportMs: UInt64 = 1000
    @Option(name: .role(CommonFlags.curveKey), help: CurveOptionHelp.curveKey) var curveKey: String?
    @Option(name: .role(CommonFlags.brokerKey), help: CurveOptionHelp.brokerKey) var brokerKey: String?
    @Option(name: .role(DeviceFlags.controllerKey), help: CurveOptionHelp.controllerKey) var controllerKey: String?
    @OptionGroup var threadOptions: ThreadOptions
    @OptionGroup var metricsOptions: MetricsOptions
    @Option(name: .role(CommonFlags.logLevel), help: "Log level: trace, debug, info, notice, warning, error, critical.") var logLevel = "info"
    @OptionGroup var logFormat: LogFormatOption

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level \(logLevel)") }
        try CurveOptionHelp.requireTogether(curveKey, [("--broker-key", brokerKey)] + (directives == nil ? [] : [("--controller-key", controllerKey)]))
        guard CameraMode(rawValue: mode) != nil else { throw ValidationError("--mode must be split, local or offload") }
        if let rate { guard rate > 0, rate.isFinite else { throw ValidationError("--rate must be positive") } }
        if let frames { guard (1...1_000_000_000_000).contains(frames) else { throw ValidationError("--frames must be 1...1000000000000") } }
        if let duration { guard duration > 0, duration <= 31_536_000 else { throw ValidationError("--duration must be more than 0 and at most a year (31536000 s)") } }
        for (flag, path) in [("--head", head), ("--full", full)] {
            if let path, !FileManager.default.fileExists(atPath: path) { throw ValidationError("\(flag): no file \(path)") }
        }
        guard source == "synthetic" || source == "fashion-mnist" || source.hasPrefix("dir:") else {
            throw ValidationError("--source must be synthetic, dir:PATH or fashion-mnist")
        }
        do { try makeConfiguration().validate() } catch let error as CameraError { throw ValidationError(error.description) }
    }

    /// The camera's configuration; `compute` is the single-threaded default while validating.
    func makeConfiguration(compute: ComputeContext = .singleThreaded) throws -> CameraConfiguration {
        var configuration = CameraConfiguration(
            cameraID: id, mode: CameraMode(rawValue: mode) ?? .split, brokerEndpoint: broker, directiveEndpoint: directives,
            modelName: model, headModel: head.map { URL(fileURLWithPath: $0) }, fullModel: full.map { URL(fileURLWithPath: $0) },
            framesPerSecond: rate, maxFrames: frames, sloMilliseconds: sloMs, heartbeatIntervalMilliseconds: heartbeatMs,
            liveness: liveness, probeIntervalMilliseconds: probeMs, latencyReportIntervalMilliseconds: latencyReportMs)
        configuration.compute = compute
        configuration.curve = try CurveOptionHelp.cameraCurve(curveKey: curveKey, brokerKey: brokerKey, controllerKey: controllerKey)
        return configuration
    }

    func run() async throws {
        let logger = logFormat.bootstrap(role: "device", level: logLevel)
        let context = try ZMQContext()
        let config = try makeConfiguration(compute: threadOptions.makeComputeContext())
        let camera: Camera
        do {
            switch source {
            case "synthetic":
                camera = Camera(configuration: config, source: try SyntheticFrameSource(width: 320, height: 240, seed: 1, jpegQuality: 90), context: context, logger: logger)
            case "fashion-mnist":
                camera = Camera(configuration: config, source: try FashionMNISTFrameSource(loops: true, jpegQuality: 90), context: context, logger: logger)
            default:
                camera = Camera(configuration: config, source: try DirectoryFrameSource(directory: String(source.dropFirst(4)), loops: true), context: context, logger: logger)
            }
        } catch {
            throw CommandError("device: \(error)")
        }
        try await RoleRunner.run(
            camera, name: "device", logger: logger, metrics: metricsOptions, families: { [weak camera] in camera?.metricFamilies() ?? [] },
            timeLimit: duration.map { .milliseconds(Int64(($0 * 1000).rounded())) })
        guard let summary = camera.wait() else { throw CommandError("device: the camera ended without a summary") }
        print(Self.describe(summary))
    }

    static func describe(_ s: CameraSummary) -> String {
        let a = s.accounting
        var parts = [
            "camera=\(s.cameraID)", "mode=\(s.mode)", "offered=\(a.offered)", "completed_edge=\(a.completedEdge)",
            "completed_local=\(a.completedLocal)", "dropped=\(a.droppedTotal)",
        ]
        let reasons = a.dropped.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        if !reasons.isEmpty { parts.append("dropped_by[\(reasons.joined(separator: ","))]") }
        parts.append("fell_back=\(a.fellBack) late=\(a.late)")
        for path in CompletionPath.allCases {
            if let h = a.latency[path], h.count > 0, let p50 = h.quantile(0.5), let p95 = h.quantile(0.95), let p99 = h.quantile(0.99) {
                parts.append(String(format: "%@_ms_p50=%.1f %@_ms_p95=%.1f %@_ms_p99=%.1f", path.rawValue, p50, path.rawValue, p95, path.rawValue, p99))
            }
            if let n = a.labelled[path], n > 0 {
                parts.append(String(format: "%@_accuracy=%.3f", path.rawValue, Double(a.correct[path] ?? 0) / Double(n)))
            }
        }
        parts.append(String(format: "elapsed_s=%.1f", s.elapsedSeconds))
        return parts.joined(separator: " ")
    }
}
