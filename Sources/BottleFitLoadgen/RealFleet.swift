import BottleFitDevice
import BottleFitImaging
import Foundation
import Logging
import ZeroMQ

/// Fidelity `real`: the fleet is N real `Camera`s of Sources/BottleFitDevice in this process, the code
/// `bottlefit device` runs (`CameraLoop` on its own thread with its own DEALER, `CameraPolicy`,
/// `LocalCompute`), each running its head and whole model with the engine on its frames.
///
/// Why in-process `Camera`s and not emulated ones or `bottlefit device` children: the camera's own loop
/// is open loop (its schedule advances by the period whatever happens and latency counts from each
/// frame's scheduled time) and its `FrameAccounting` counts offered frames and outcomes separately, so
/// its summary is already a correct report with no coordinated omission; running it in-process gives
/// those histograms and counters directly (no log parsing) and a status every 100 ms for the time series.
/// What it cannot do: emulate a board or an uplink (the compute is this machine's, the network is
/// the sockets'), or run more cameras than this machine can compute heads for.
enum RealFleet {
    static func run(
        plan: LoadgenPlan, options: LoadgenRunOptions, context: ZMQContext, command: [String],
        progress: ((LoadgenProgress) -> Void)?, shouldStop: () -> Bool
    ) throws(LoadgenError) -> LoadgenReport {
        guard let broker = options.broker else { throw LoadgenError("a broker endpoint is required") }
        var logger = Logger(label: "bottlefit.loadgen.camera")
        logger.logLevel = .warning
        // Every camera's configuration and source first: a bad one is refused before any camera starts.
        var cameras: [(camera: Camera, group: Int)] = []
        var index = 0
        for (g, group) in plan.groups.enumerated() {
            guard case .steady(let rate) = group.shape, group.arrivals == .constant else {
                throw LoadgenError("group \(group.name): fidelity real paces frames as a camera does: shape steady, arrivals constant")
            }
            for i in 0..<group.cameras {
                let id = plan.cameraCount == group.cameras && plan.groups.count == 1
                    ? String(format: "cam-%04d", i) : "\(group.name)-" + String(format: "%04d", i)
                var configuration = CameraConfiguration(
                    cameraID: id, mode: group.mode(ofCamera: i), brokerEndpoint: broker, directiveEndpoint: options.directives,
                    modelName: group.modelName, headModel: group.headModel.map { URL(fileURLWithPath: $0) },
                    fullModel: group.fullModel.map { URL(fileURLWithPath: $0) }, framesPerSecond: rate,
                    maxFrames: max(1, Int((rate * plan.durationSeconds).rounded())), sloMilliseconds: group.sloMilliseconds,
                    maxInFlight: group.maxInFlight, jpegQuality: group.jpegQuality,
                    latencyReportIntervalMilliseconds: plan.latencyReportMilliseconds)
                configuration.curve = options.curve
                do { try configuration.validate() } catch { throw LoadgenError("group \(group.name): \(error)") }
                let size = group.model.inputSize
                let camera: Camera
                do throws(ImagingError) {
                    if group.fashionMNIST {
                        camera = Camera(configuration: configuration, source: try FashionMNISTFrameSource(loops: true, jpegQuality: group.jpegQuality), context: context, logger: logger)
                    } else if let dir = group.jpegDirectory {
                        camera = Camera(configuration: configuration, source: try DirectoryFrameSource(directory: dir, loops: true), context: context, logger: logger)
                    } else {
                        let source = try SyntheticFrameSource(width: size, height: size, seed: plan.seed &+ UInt64(index), jpegQuality: group.jpegQuality)
                        camera = Camera(configuration: configuration, source: source, context: context, logger: logger)
                    }
                } catch {
                    throw LoadgenError("group \(group.name): source: \(error)")
                }
                cameras.append((camera, g))
                index += 1
            }
        }
        let transport = options.stats != nil || options.directives != nil
            ? try ZMQLoadgenTransport(
                context: context, broker: broker, connections: 0, sendHighWaterMark: 16, directives: options.directives, stats: options.stats,
                curve: options.curve)
            : nil
        defer { transport?.close() }
        let cpuStart = processCPUMicroseconds()
        let start = unixMicroseconds()
        // Started one after another: each loads its models first, which also spreads their phases.
        var started: [Camera] = []
        for (camera, g) in cameras {
            do { try camera.start() } catch {
                for c in started { c.stop() }
                throw LoadgenError("group \(plan.groups[g].name): camera \(camera.configuration.cameraID) did not start: \(error)")
            }
            started.append(camera)
        }
        var recorder = RealFleetRecorder(plan: plan, start: start, cameras: cameras.count)
        let drain = plan.drainMilliseconds ?? (plan.groups.map(\.sloMilliseconds).max() ?? 250) + 1000
        let end = unixMicroseconds() + UInt64(plan.durationSeconds * 1e6) + drain * 1000
        var stopping = false
        while true {
            let sampleEnd = unixMicroseconds() + plan.sampleMilliseconds * 1000
            while unixMicroseconds() < sampleEnd {
                let wait = sampleEnd > unixMicroseconds() ? min(sampleEnd - unixMicroseconds(), 100_000) : 0
                if let transport {
                    transport.poll(timeoutMicroseconds: wait) { recorder.record($0, now: unixMicroseconds(), statuses: cameras.map(\.camera.status)) }
                } else {
                    usleep(UInt32(wait))
                }
            }
            let statuses = cameras.map(\.camera.status)
            let sample = recorder.sample(now: unixMicroseconds(), statuses: statuses, modes: cameras.map(\.camera.configuration.mode))
            let settled = statuses.allSatisfy { $0.accounting.offered > 0 && $0.accounting.isSettled }
                && statuses.enumerated().allSatisfy { $0.element.accounting.offered >= cameras[$0.offset].camera.configuration.maxFrames ?? 0 }
            progress?(LoadgenProgress(
                elapsedSeconds: sample.t, offeredPerSecond: sample.offeredPerS, completedPerSecond: sample.completedPerS,
                p99SoFar: nil, localFraction: sample.localFraction,
                dropped: statuses.reduce(0) { $0 + $1.accounting.droppedTotal }, errors: 0, draining: settled))
            if settled || unixMicroseconds() >= end { break }
            if !stopping && shouldStop() {
                stopping = true
                for c in cameras { DispatchQueue.global().async { c.camera.stop() } }
            }
        }
        var summaries: [CameraSummary?] = []
        for (camera, _) in cameras { summaries.append(camera.stop()) }
        let elapsed = unixMicroseconds() &- start
        return recorder.report(
            summaries: summaries, cameras: cameras.map { ($0.camera.configuration, $0.group) }, elapsed: elapsed,
            cpu: processCPUMicroseconds() &- cpuStart, command: command)
    }

    static func unixMicroseconds() -> UInt64 { SystemCameraClock().unixMicroseconds() }
}
