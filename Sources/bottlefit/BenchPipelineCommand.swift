import ArgumentParser
import BottleFitBroker
import BottleFitCore
import BottleFitEngine
import BottleFitProtocol
import BottleFitWorker
import CBottleFitZMQ
import Foundation
import Logging
import Synchronization
import ZeroMQ

/// `bottlefit bench-pipeline`: the two pipeline throughput targets, each as a ratio to a baseline
/// measured in the same run (docs/pipeline-benchmarks.md).
struct BenchPipelineCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-pipeline",
        abstract: "Benchmark the pipeline: broker vs zmq_proxy forwarding, or end-to-end vs standalone workers.",
        discussion: """
            Everything runs in this process, on threads that each own their sockets, over loopback \
            (tcp://127.0.0.1, ports chosen by the OS) or ipc:// in a temporary directory.

            --mode broker: forwarding capacity of the real broker with instant workers, as a ratio to \
            libzmq's zmq_proxy (ROUTER frontend, DEALER backend) moving the same traffic (target >= 0.7). \
            --cameras DEALERs each keep --window FRAMEs of --payload-bytes (a valid bottleneck FRAME, \
            deadline an hour away) outstanding; --workers instant workers answer each FRAME at once \
            with a valid RESULT for its (c, s). Behind the broker they send READY (credit 4096) and \
            return CREDIT every 64 answers; behind the proxy they are DEALERs that get \
            [camera-rid, empty, FRAME] round-robin and send [camera-rid, empty, RESULT] back, so \
            both sides carry the same messages and bytes each way, except the broker's CREDIT \
            (1 per 64 frames, 16 bytes), which is part of its protocol. One round trip = FRAME out, \
            RESULT back. Each run: --warmup round trips, then --count timed; runs alternate broker \
            and proxy; the medians and their ratio are printed. Defaults: 2 cameras, 2 workers, \
            window 64, 10240-byte payload, 2000 warm-up, 20000 timed, 5 runs of each.

            --mode end-to-end: frames/s completed through the broker by --workers real TailWorkers \
            (--tail, --max-batch, --credit, --threads as `bottlefit worker`), fed pre-quantized random \
            bottlenecks of the tail's input shape (no head: that is the cameras' cost), vs the same \
            number of threads each running the engine plan at --max-batch back to back (the standalone \
            ceiling of that worker configuration; `bottlefit bench` per thread), in the same run \
            (target >= 0.9). Cameras keep enough frames outstanding to saturate the workers \
            (window default 2 x credit x workers / cameras). Each run: --warmup-seconds, then a \
            --duration window; runs alternate standalone and pipeline. Defaults: 1 worker, \
            max batch 8, credit 16, threads 1, 2 cameras, warm-up 2 s, duration 10 s, 3 runs.

            Also printed: process CPU time per round trip on each side (broker mode; the clients are \
            the same on both sides, so the difference is the forwarder's own cost, which matters when \
            the machine is too small for the forwarder to be the bottleneck) and the workers' mean \
            batch (end-to-end; below --max-batch means the workers were not saturated). An end-to-end \
            window starts and ends just after a burst of answers, so it holds whole batches.

            A broker-mode run is bounded by --timeout seconds; an end-to-end run takes --warmup-seconds \
            + --duration + at most 4 s. With --json one JSON object is printed (medians, every run, \
            the ratio, the target and the settings).
            Examples:
              bottlefit bench-pipeline --mode broker --runs 5 --json
              bottlefit bench-pipeline --mode end-to-end --tail models/demo/tail.onnx --threads 2 --json
            """
    )

    enum Mode: String, ExpressibleByArgument, CaseIterable { case broker, endToEnd = "end-to-end" }
    enum Transport: String, ExpressibleByArgument, CaseIterable { case tcp, ipc }

    @Option(help: "broker or end-to-end.") var mode: Mode
    @Option(help: "Camera sender threads.") var cameras = 2
    @Option(help: "Worker threads (default: 2 for broker, 1 for end-to-end).") var workers: Int?
    @Option(help: "Frames each camera keeps outstanding (default: 64 for broker; 2 x credit x workers / cameras for end-to-end).")
    var window: Int?
    @Option(help: "Timed runs of each side (default: 5 for broker, 3 for end-to-end).") var runs: Int?
    @Option(help: "tcp (127.0.0.1) or ipc (a temporary directory).") var transport: Transport = .tcp
    @Option(help: "Upper bound on one run, in seconds.") var timeout: Double = 60
    @Flag(help: "Print one JSON object instead of text.") var json = false
    // Broker mode.
    @Option(help: "Broker mode: FRAME payload bytes (default 10240).") var payloadBytes: Int?
    @Option(help: "Broker mode: untimed round trips per run (default 2000).") var warmup: Int?
    @Option(help: "Broker mode: timed round trips per run (default 20000).") var count: Int?
    // End-to-end mode.
    @Option(help: "End-to-end mode: the tail ONNX file (input = the bottleneck).") var tail: String?
    @Option(help: "End-to-end mode: largest batch a worker runs (default 8).") var maxBatch: Int?
    @Option(help: "End-to-end mode: credit of each worker (default 16).") var credit: Int?
    @Option(help: "End-to-end mode: untimed seconds per run (default 2).") var warmupSeconds: Double?
    @Option(help: "End-to-end mode: timed seconds per run (default 10).") var duration: Double?
    @OptionGroup var threadOptions: ThreadOptions

    func validate() throws {
        guard cameras >= 1 && cameras <= 64 else { throw ValidationError("--cameras must be in 1...64") }
        if let workers, !(1...64).contains(workers) { throw ValidationError("--workers must be in 1...64") }
        if let window, !(1...4096).contains(window) { throw ValidationError("--window must be in 1...4096") }
        if let runs, !(1...100).contains(runs) { throw ValidationError("--runs must be in 1...100") }
        guard timeout > 0 && timeout <= 3600 else { throw ValidationError("--timeout must be in (0, 3600] seconds") }
        switch mode {
        case .broker:
            let e2e: [(Any?, String)] = [(tail, "--tail"), (maxBatch, "--max-batch"), (credit, "--credit"),
                                         (warmupSeconds, "--warmup-seconds"), (duration, "--duration")]
            if let given = e2e.first(where: { $0.0 != nil }) { throw ValidationError("\(given.1) is for --mode end-to-end") }
            guard threadOptions.threads == 1 else { throw ValidationError("--threads is for --mode end-to-end (instant workers compute nothing)") }
            if let payloadBytes, !(1...(4 << 20)).contains(payloadBytes) { throw ValidationError("--payload-bytes must be in 1...4194304") }
            if let warmup, !(0...100_000_000).contains(warmup) { throw ValidationError("--warmup must be 0...100000000 round trips") }
            if let count, !(1...100_000_000).contains(count) { throw ValidationError("--count must be 1...100000000 round trips") }
        case .endToEnd:
            let brokerOnly: [(Any?, String)] = [(payloadBytes, "--payload-bytes"), (warmup, "--warmup"), (count, "--count")]
            if let given = brokerOnly.first(where: { $0.0 != nil }) {
                throw ValidationError("\(given.1) is for --mode broker (end-to-end uses --warmup-seconds and --duration)")
            }
            guard let tail else { throw ValidationError("--mode end-to-end needs --tail TAIL.onnx") }
            guard FileManager.default.fileExists(atPath: tail) else { throw ValidationError("--tail: no file \(tail)") }
            if let maxBatch, !(1...4096).contains(maxBatch) { throw ValidationError("--max-batch must be in 1...4096") }
            if let credit, !(1...65536).contains(credit) { throw ValidationError("--credit must be in 1...65536") }
            if (credit ?? 16) < (maxBatch ?? 8) { throw ValidationError("--credit below --max-batch can never fill a batch") }
            if let warmupSeconds, !(0...3600).contains(warmupSeconds) { throw ValidationError("--warmup-seconds must be 0...3600") }
            if let duration, !(duration > 0 && duration <= 3600) { throw ValidationError("--duration must be more than 0 and at most 3600 seconds") }
            // A window starts and ends after a burst of answers, each wait at most 2 s (CompletionClock).
            if (warmupSeconds ?? 2) + (duration ?? 10) + 4 > timeout {
                throw ValidationError("--warmup-seconds + --duration + 4 s must not exceed --timeout (\(timeout) s)")
            }
        }
    }

    func run() throws {
        var logger = Logger(label: "bottlefit.bench-pipeline")
        // The broker logs "worker lost" when the bench's own workers disconnect at the end of a run.
        logger.logLevel = .error
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("bottlefit-bench-\(getpid())")
        if transport == .ipc { try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true) }
        defer { if transport == .ipc { try? FileManager.default.removeItem(at: scratch) } }
        let endpoints = EndpointFactory(transport: transport, directory: scratch.path)
        switch mode {
        case .broker: try runBrokerMode(endpoints: endpoints, logger: logger)
        case .endToEnd: try runEndToEndMode(endpoints: endpoints, logger: logger)
        }
    }

    // MARK: Broker mode

    private func runBrokerMode(endpoints: EndpointFactory, logger: Logger) throws {
        let (workers, window, runs) = (self.workers ?? 2, self.window ?? 64, self.runs ?? 5)
        let (payloadBytes, warmup, count) = (self.payloadBytes ?? 10240, self.warmup ?? 2000, self.count ?? 20000)
        let load = CameraLoad(
            model: "bench", payload: .bottleneck(QuantizedTensor(
                shape: [payloadBytes], data: (0..<payloadBytes).map { UInt8(truncatingIfNeeded: $0 &* 131) },
                parameters: QuantizationParameters(scale: 0.05, zeroPoint: 128))),
            window: window, warmup: warmup, count: count)
        var brokerRates: [Double] = [], proxyRates: [Double] = [], brokerCPU: [Double] = [], proxyCPU: [Double] = []
        var brokerDrops = 0
        for round in 0..<runs {
            let b = try measureBroker(round: round, workers: workers, load: load, endpoints: endpoints, logger: logger)
            brokerRates.append(b.rate)
            brokerCPU.append(b.cpuMicroseconds)
            brokerDrops += b.errors
            let p = try measureProxy(round: round, workers: workers, load: load, endpoints: endpoints)
            proxyRates.append(p.rate)
            proxyCPU.append(p.cpuMicroseconds)
            if !json { printError(String(format: "run %d: broker %.0f msg/s, zmq_proxy %.0f msg/s", round + 1, brokerRates.last!, proxyRates.last!)) }
        }
        let (broker, proxy) = (median(brokerRates), median(proxyRates))
        let ratio = broker / proxy
        if json {
            print("{" + [
                "\"mode\": \"broker\"", "\"broker_msgs_per_s\": \(fmt(broker))", "\"proxy_msgs_per_s\": \(fmt(proxy))",
                "\"ratio\": \(fmt(ratio))", "\"target\": 0.7", "\"meets_target\": \(ratio >= 0.7)",
                "\"broker_runs\": [\(brokerRates.map(fmt).joined(separator: ", "))]",
                "\"proxy_runs\": [\(proxyRates.map(fmt).joined(separator: ", "))]",
                "\"broker_cpu_us_per_round_trip\": \(fmt(median(brokerCPU)))",
                "\"proxy_cpu_us_per_round_trip\": \(fmt(median(proxyCPU)))",
                "\"broker_errors\": \(brokerDrops)", "\"payload_bytes\": \(payloadBytes)", "\"cameras\": \(cameras)",
                "\"workers\": \(workers)", "\"window\": \(window)", "\"warmup\": \(warmup)", "\"count\": \(count)",
                "\"runs\": \(runs)", "\"transport\": \"\(transport.rawValue)\"",
            ].joined(separator: ", ") + "}")
        } else {
            print("broker forwarding, \(payloadBytes)-byte frames, \(cameras) cameras x window \(window), \(workers) instant workers, \(transport.rawValue), median of \(runs) runs of \(count) round trips")
            print(String(format: "broker    %10.0f round trips/s", broker))
            print(String(format: "zmq_proxy %10.0f round trips/s", proxy))
            print(String(format: "ratio     %10.3f  (target >= 0.7: %@)", ratio, ratio >= 0.7 ? "met" : "NOT met"))
            // Process CPU per round trip: the clients are identical on both sides, so the difference is the forwarder's.
            print(String(format: "process CPU per round trip: broker %.1f us, zmq_proxy %.1f us", median(brokerCPU), median(proxyCPU)))
            if brokerDrops > 0 { print("broker answered \(brokerDrops) frames with ERROR (BUSY?): raise the queue or lower --window") }
        }
    }

    private func measureBroker(round: Int, workers: Int, load: CameraLoad, endpoints: EndpointFactory, logger: Logger) throws -> Measured {
        let context = try ZMQContext()
        var configuration = BrokerConfiguration(
            frontendEndpoint: endpoints.make("b\(round)-front"), backendEndpoint: endpoints.make("b\(round)-back"),
            statsEndpoint: endpoints.make("b\(round)-stats"))
        configuration.policy.queueCapacity = max(1024, 2 * cameras * load.window)
        let broker = Broker(configuration: configuration, context: context, logger: logger)
        let bound: BrokerEndpoints
        do { bound = try broker.start() } catch { throw CommandError("broker: \(error)") }
        defer { broker.stop(); broker.waitUntilStopped() }
        let state = RunState()
        let workerThreads = (0..<workers).map { i in
            spawn { InstantWorker.run(context: context, endpoint: bound.backend, id: "instant-\(i)", behindBroker: true, state: state) }
        }
        defer { state.stop.store(true, ordering: .releasing); workerThreads.forEach { $0.wait() } }
        // The broker answers UNKNOWN_MODEL until a worker serving "bench" has said READY.
        let ready = Date().addingTimeInterval(10)
        while broker.counters.workersJoined < workers && Date() < ready { usleep(5000) }
        guard broker.counters.workersJoined >= workers else { throw CommandError("workers did not join the broker within 10 s") }
        return try drive(context: context, endpoint: bound.frontend, load: load, state: state)
    }

    private func measureProxy(round: Int, workers: Int, load: CameraLoad, endpoints: EndpointFactory) throws -> Measured {
        let proxy = try ProxyBaseline(frontend: endpoints.make("p\(round)-front"), backend: endpoints.make("p\(round)-back"))
        defer { proxy.stop() }
        let context = try ZMQContext()
        let (state, backend) = (RunState(), proxy.backend)
        let workerThreads = (0..<workers).map { i in
            spawn { InstantWorker.run(context: context, endpoint: backend, id: "echo-\(i)", behindBroker: false, state: state) }
        }
        defer { state.stop.store(true, ordering: .releasing); workerThreads.forEach { $0.wait() } }
        return try drive(context: context, endpoint: proxy.frontend, load: load, state: state)
    }

    /// Runs the cameras until `load.warmup + load.count` round trips completed (or the timeout).
    private func drive(context: ZMQContext, endpoint: String, load: CameraLoad, state: RunState) throws -> Measured {
        let cameraThreads = (0..<cameras).map { i in
            spawn { CameraSender.run(context: context, endpoint: endpoint, id: "cam-\(i)", load: load, state: state) }
        }
        let deadline = Date().addingTimeInterval(timeout)
        while state.finishedAt.load(ordering: .acquiring) == 0 && Date() < deadline { usleep(2000) }
        state.stop.store(true, ordering: .releasing)
        cameraThreads.forEach { $0.wait() }
        let (t0, t1) = (state.startedAt.load(ordering: .acquiring), state.finishedAt.load(ordering: .acquiring))
        guard t1 > t0 else {
            throw CommandError("run timed out after \(timeout) s: \(state.completed.load(ordering: .relaxed)) round trips, \(state.errors.load(ordering: .relaxed)) errors")
        }
        let cpu = state.cpuAtFinish.load(ordering: .relaxed) &- state.cpuAtStart.load(ordering: .relaxed)
        return Measured(
            rate: Double(load.count) / (Double(t1 - t0) / 1e9), cpuMicroseconds: Double(cpu) / Double(load.count),
            errors: state.errors.load(ordering: .relaxed))
    }

    // MARK: End-to-end mode

    private func runEndToEndMode(endpoints: EndpointFactory, logger: Logger) throws {
        let tailURL = URL(fileURLWithPath: tail!)
        let (workers, runs, maxBatch, credit) = (self.workers ?? 1, self.runs ?? 3, self.maxBatch ?? 8, self.credit ?? 16)
        let (warmupSeconds, duration) = (self.warmupSeconds ?? 2, self.duration ?? 10)
        let window = self.window ?? max(1, (2 * credit * workers + cameras - 1) / cameras)
        let compute = threadOptions.makeComputeContext()
        let sampleShape: [Int]
        do {
            let session = try InferenceSession(contentsOf: tailURL)
            guard session.optimizedGraph.inputs.count == 1 else { throw CommandError("the tail must have one input") }
            sampleShape = Array(try InferenceSession.concreteShape(session.optimizedGraph.inputs[0], batch: 1).dropFirst())
        } catch let error as CommandError { throw error } catch { throw CommandError("--tail: \(error)") }
        let elements = sampleShape.reduce(1, *)
        var rng = SeededGenerator(seed: 7)
        let load = CameraLoad(
            model: "bench", payload: .bottleneck(QuantizedTensor(
                shape: sampleShape, data: (0..<elements).map { _ in UInt8(truncatingIfNeeded: rng.next()) },
                parameters: QuantizationParameters(scale: 0.05, zeroPoint: 128))),
            window: window, warmup: 0, count: 0)
        var standalone: [Double] = [], pipeline: [Double] = [], batches: [Double] = []
        var errors = 0
        for round in 0..<runs {
            standalone.append(try StandaloneEngine.measure(
                tail: tailURL, threads: workers, batch: maxBatch, warmup: warmupSeconds, duration: duration, compute: compute))
            let p = try measureEndToEnd(
                round: round, tail: tailURL, workers: workers, maxBatch: maxBatch, credit: credit, load: load,
                warmup: warmupSeconds, duration: duration, endpoints: endpoints, logger: logger, compute: compute)
            pipeline.append(p.rate)
            batches.append(p.meanBatch)
            errors += p.errors
            if !json { printError(String(format: "run %d: pipeline %.1f frames/s (mean batch %.2f), standalone %.1f frames/s", round + 1, p.rate, p.meanBatch, standalone.last!)) }
        }
        let (e2e, alone) = (median(pipeline), median(standalone))
        let ratio = e2e / alone
        if json {
            print("{" + [
                "\"mode\": \"end-to-end\"", "\"pipeline_frames_per_s\": \(fmt(e2e))", "\"standalone_frames_per_s\": \(fmt(alone))",
                "\"ratio\": \(fmt(ratio))", "\"target\": 0.9", "\"meets_target\": \(ratio >= 0.9)",
                "\"pipeline_runs\": [\(pipeline.map(fmt).joined(separator: ", "))]",
                "\"standalone_runs\": [\(standalone.map(fmt).joined(separator: ", "))]",
                "\"mean_batch\": \(fmt(median(batches)))", "\"errors\": \(errors)",
                "\"bottleneck_shape\": [\(sampleShape.map(String.init).joined(separator: ", "))]",
                "\"workers\": \(workers)", "\"max_batch\": \(maxBatch)", "\"credit\": \(credit)", "\"threads\": \(threadOptions.threads)",
                "\"cameras\": \(cameras)", "\"window\": \(window)", "\"warmup_s\": \(fmt(warmupSeconds))",
                "\"duration_s\": \(fmt(duration))", "\"runs\": \(runs)", "\"transport\": \"\(transport.rawValue)\"",
            ].joined(separator: ", ") + "}")
        } else {
            print("end-to-end, tail \(tail!) (bottleneck \(sampleShape.map(String.init).joined(separator: "x"))), \(workers) worker(s), max batch \(maxBatch), credit \(credit), threads \(threadOptions.threads), median of \(runs) runs of \(duration) s")
            print(String(format: "pipeline   %10.1f frames/s  (mean batch %.2f)", e2e, median(batches)))
            print(String(format: "standalone %10.1f frames/s", alone))
            print(String(format: "ratio      %10.3f  (target >= 0.9: %@)", ratio, ratio >= 0.9 ? "met" : "NOT met"))
            if errors > 0 { print("\(errors) frames were answered with ERROR: the pipeline was not measured cleanly") }
        }
    }

    private func measureEndToEnd(
        round: Int, tail: URL, workers: Int, maxBatch: Int, credit: Int, load: CameraLoad,
        warmup: Double, duration: Double, endpoints: EndpointFactory, logger: Logger, compute: ComputeContext
    ) throws -> (rate: Double, meanBatch: Double, errors: Int) {
        let context = try ZMQContext()
        var configuration = BrokerConfiguration(
            frontendEndpoint: endpoints.make("e\(round)-front"), backendEndpoint: endpoints.make("e\(round)-back"),
            statsEndpoint: endpoints.make("e\(round)-stats"))
        configuration.policy.queueCapacity = max(1024, 2 * cameras * load.window)
        let broker = Broker(configuration: configuration, context: context, logger: logger)
        let bound: BrokerEndpoints
        do { bound = try broker.start() } catch { throw CommandError("broker: \(error)") }
        defer { broker.stop(); broker.waitUntilStopped() }
        var tailWorkers: [TailWorker] = []
        defer { tailWorkers.forEach { $0.stop() }; tailWorkers.forEach { $0.waitUntilStopped(timeout: .seconds(10)) } }
        for i in 0..<workers {
            let worker = TailWorker(configuration: WorkerConfiguration(
                endpoint: bound.backend, workerID: "bench-w\(i)", models: ["bench": WorkerModelFiles(tail: tail)],
                credit: credit, maxBatch: maxBatch, compute: compute), context: context, logger: logger)
            do { try worker.start() } catch { throw CommandError("worker: \(error)") }
            tailWorkers.append(worker)
        }
        let ready = Date().addingTimeInterval(10)
        while broker.counters.workersJoined < workers && Date() < ready { usleep(5000) }
        guard broker.counters.workersJoined >= workers else { throw CommandError("workers did not join the broker within 10 s") }
        let state = RunState()
        let cameraThreads = (0..<cameras).map { i in
            spawn { CameraSender.run(context: context, endpoint: bound.frontend, id: "cam-\(i)", load: load, state: state) }
        }
        defer { state.stop.store(true, ordering: .releasing); cameraThreads.forEach { $0.wait() } }
        Thread.sleep(forTimeInterval: warmup)
        let before = tailWorkers.map(\.counters)
        let start = state.clock.sampleAfterBurst()
        Thread.sleep(forTimeInterval: duration)
        let end = state.clock.sampleAfterBurst()
        let after = tailWorkers.map(\.counters)
        // Mean batch over the window, from the workers' own counters (reported about every poll).
        let frames = zip(before, after).reduce(0) { $0 + $1.1.framesComputed - $1.0.framesComputed }
        let batches = zip(before, after).reduce(0) { $0 + $1.1.batches - $1.0.batches }
        return (CompletionClock.rate(from: start, to: end), batches == 0 ? 0 : Double(frames) / Double(batches),
                state.errors.load(ordering: .relaxed))
    }

    private func median(_ values: [Double]) -> Double {
        let s = values.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }

    private func fmt(_ v: Double) -> String { String(format: "%.4f", v) }
}

// MARK: - The pieces of a run

/// One measured side of a run: round trips per second, and frames answered with ERROR.
private struct Measured { var rate: Double; var cpuMicroseconds: Double; var errors: Int }

/// Endpoints on loopback: `tcp://127.0.0.1:*` (the OS picks the port) or ipc in a private directory.
private struct EndpointFactory {
    var transport: BenchPipelineCommand.Transport
    var directory: String
    func make(_ name: String) -> String {
        transport == .tcp ? "tcp://127.0.0.1:*" : "ipc://\(directory)/\(name)"
    }
}

/// What the cameras send: one FRAME template, a window, and the run's warm-up and timed counts.
private struct CameraLoad: Sendable {
    var model: String
    var payload: FramePayload
    var window: Int
    /// Untimed round trips, then timed ones; `count` 0 means "until the run is stopped".
    var warmup: Int
    var count: Int
    /// Round trips the cameras send in all.
    var target: Int { count == 0 ? .max : warmup + count }
}

/// Counters and timestamps that camera and worker threads share during one run.
private final class RunState: Sendable {
    let stop = Atomic<Bool>(false)
    /// Round trips handed out to cameras (a camera takes one before sending a frame).
    let issued = Atomic<Int>(0)
    let completed = Atomic<Int>(0)
    let errors = Atomic<Int>(0)
    /// Uptime in ns when `warmup` and `warmup + count` round trips had completed; 0 until then.
    let startedAt = Atomic<UInt64>(0)
    let finishedAt = Atomic<UInt64>(0)
    /// Process CPU time (user + system, µs) at those two moments.
    let cpuAtStart = Atomic<UInt64>(0)
    let cpuAtFinish = Atomic<UInt64>(0)
    /// Every RESULT, for the end-to-end window.
    let clock = CompletionClock()
}

/// Counts completions and remembers when the last one happened, so a window can start and end
/// just after a burst (a batch's answers arrive together): counting whole batches only, the
/// rate of a window of a few batches is not off by a fraction of a batch.
private final class CompletionClock: Sendable {
    let count = Atomic<Int>(0)
    let lastAt = Atomic<UInt64>(0)

    func record(_ n: Int) {
        count.add(n, ordering: .relaxed)
        lastAt.store(DispatchTime.now().uptimeNanoseconds, ordering: .releasing)
    }

    /// Waits for the next completion, then until none came for `quiet` (at most `maxWait` in all),
    /// and returns the count and the time of the last completion.
    func sampleAfterBurst(quiet: UInt64 = 5_000_000, maxWait: UInt64 = 2_000_000_000) -> (count: Int, at: UInt64) {
        let start = DispatchTime.now().uptimeNanoseconds
        let first = count.load(ordering: .acquiring)
        while count.load(ordering: .acquiring) == first && DispatchTime.now().uptimeNanoseconds - start < maxWait { usleep(200) }
        while true {
            let (c, at) = (count.load(ordering: .acquiring), lastAt.load(ordering: .acquiring))
            let now = DispatchTime.now().uptimeNanoseconds
            if now &- at >= quiet || now - start >= maxWait { return (c, at == 0 ? now : at) }
            usleep(500)
        }
    }

    /// Completions per second between two samples.
    static func rate(from a: (count: Int, at: UInt64), to b: (count: Int, at: UInt64)) -> Double {
        b.at > a.at ? Double(b.count - a.count) / (Double(b.at - a.at) / 1e9) : 0
    }
}

/// User + system CPU time of the whole process so far, in microseconds (`getrusage(RUSAGE_SELF)`).
private func processCPUMicroseconds() -> UInt64 {
    var usage = rusage()
    #if canImport(Glibc)
    let who = RUSAGE_SELF.rawValue
    #else
    let who = RUSAGE_SELF
    #endif
    guard getrusage(who, &usage) == 0 else { return 0 }
    func us(_ t: timeval) -> UInt64 { UInt64(max(0, t.tv_sec)) * 1_000_000 + UInt64(max(0, t.tv_usec)) }
    return us(usage.ru_utime) + us(usage.ru_stime)
}

/// A camera DEALER sending FRAMEs as fast as its window allows (docs/protocol.md, section 9).
private enum CameraSender {
    static func run(context: ZMQContext, endpoint: String, id: String, load: CameraLoad, state: RunState) {
        do throws(ZMQError) {
            let socket = try ZMQSocket(context, type: .dealer, linger: 0)
            // As a camera sets them (docs/protocol.md, section 9).
            try socket.setOption(.immediate, true)
            try socket.setOption(.maxMessageSize, Int64(ProtocolLimits.default.maxMessageBytes))
            try socket.setOption(.receiveTimeout, 20)
            try socket.setOption(.sendTimeout, 20)
            try socket.connect(endpoint)
            // Encoded once with sequence UInt64.max, so "s" is a uint 64 whose 8 bytes are patched per
            // frame: valid msgpack (any integer width is allowed) without re-encoding 10 KB each time.
            let now = UInt64(Date().timeIntervalSince1970 * 1000)
            guard var frame = try? Message.frame(FrameMessage(
                cameraID: id, sequence: .max, model: load.model, payload: load.payload,
                deadline: now + 3_600_000, sentAt: now)).encoded(),
                  let offset = sequenceOffset(frame)
            else { preconditionFailure("cannot encode the benchmark FRAME") }
            var sequence: UInt64 = 0
            var outstanding = 0
            var ticketsLeft = true
            let target = load.target
            while !state.stop.load(ordering: .relaxed) {
                while ticketsLeft && outstanding < load.window {
                    guard state.issued.add(1, ordering: .relaxed).oldValue < target else { ticketsLeft = false; break }
                    sequence += 1
                    withUnsafeBytes(of: sequence.bigEndian) { bytes in
                        for i in 0..<8 { frame[offset + i] = bytes[i] }
                    }
                    do throws(ZMQError) { try socket.send([[], frame]) } catch where error.isWouldBlock {
                        // No broker yet (ZMQ_IMMEDIATE) or its queue is full: give the ticket back, read replies.
                        state.issued.subtract(1, ordering: .relaxed)
                        break
                    }
                    outstanding += 1
                }
                if !ticketsLeft && outstanding == 0 { return }
                guard let reply = try receiveOrNil(socket, blocking: true) else { continue }
                var next: [[UInt8]]? = reply
                while let message = next {
                    if message.count == 2, let header = try? MessageHeader.peek(message[1]) {
                        if header.type == "result" {
                            outstanding -= 1
                            let n = state.completed.add(1, ordering: .acquiringAndReleasing).newValue
                            state.clock.record(1)
                            if n == load.warmup {
                                state.cpuAtStart.store(processCPUMicroseconds(), ordering: .relaxed)
                                state.startedAt.store(DispatchTime.now().uptimeNanoseconds, ordering: .releasing)
                            }
                            if n == target {
                                state.cpuAtFinish.store(processCPUMicroseconds(), ordering: .relaxed)
                                state.finishedAt.store(DispatchTime.now().uptimeNanoseconds, ordering: .releasing)
                            }
                        } else if header.type == "error" {
                            outstanding -= 1
                            state.errors.add(1, ordering: .relaxed)
                            // The frame was not delivered: its ticket goes back, so the count stays exact.
                            state.issued.subtract(1, ordering: .relaxed)
                            ticketsLeft = true
                        }
                    }
                    next = try receiveOrNil(socket, blocking: false)
                }
            }
        } catch {
            printError("camera \(id): \(error)")
            state.stop.store(true, ordering: .releasing)
        }
    }

    /// Where the 8 bytes of `"s": uint64` start in an encoded FRAME (`a1 73 cf ...`).
    static func sequenceOffset(_ frame: [UInt8]) -> Int? {
        let marker: [UInt8] = [0xa1, 0x73, 0xcf] + [UInt8](repeating: 0xff, count: 8)
        guard frame.count >= marker.count else { return nil }
        for i in 0...(frame.count - marker.count) where frame[i..<(i + marker.count)].elementsEqual(marker) { return i + 3 }
        return nil
    }
}

/// One receive: blocking up to the socket's receive timeout, or not at all; nil when nothing came.
private func receiveOrNil(_ socket: ZMQSocket, blocking: Bool) throws(ZMQError) -> [[UInt8]]? {
    if !blocking { return try socket.tryReceive() }
    do { return try socket.receive() } catch where error.isWouldBlock { return nil }
}

/// A worker that computes nothing: it answers each FRAME at once with a valid RESULT for its (c, s).
///
/// Behind the broker it is a protocol worker (READY, CREDIT every 64 answers, HEARTBEAT when
/// idle); behind `zmq_proxy` it is a DEALER echoer that gets `[camera-rid, empty, FRAME]` and
/// sends `[camera-rid, empty, RESULT]`. Both peek and encode the same way, so they cost the same.
private enum InstantWorker {
    static let creditBatch = 64

    static func run(context: ZMQContext, endpoint: String, id: String, behindBroker: Bool, state: RunState) {
        do throws(ZMQError) {
            let socket = try ZMQSocket(context, type: .dealer, linger: 0)
            // As a worker sets them (docs/protocol.md, section 9), behind the proxy too.
            try socket.setOption(.immediate, true)
            try socket.setOption(.maxMessageSize, Int64(ProtocolLimits.default.maxMessageBytes))
            try socket.setOption(.receiveTimeout, 20)
            try socket.setOption(.sendTimeout, 1000)  // a send stuck for 1 s ends the run with an error
            try socket.connect(endpoint)
            func control(_ message: Message) throws(ZMQError) {
                guard let bytes = try? message.encoded() else { preconditionFailure("cannot encode \(message.type)") }
                try socket.send([[], bytes])
            }
            if behindBroker { try control(.ready(ReadyMessage(workerID: id, models: ["bench"], credit: 4096))) }
            var unreturned = 0
            var lastSent = DispatchTime.now().uptimeNanoseconds
            while !state.stop.load(ordering: .relaxed) {
                var next = try receiveOrNil(socket, blocking: true)
                while let message = next {
                    // Behind the broker: [empty, camera-rid, empty, FRAME]; behind the proxy: [camera-rid, empty, FRAME].
                    let envelope = behindBroker ? 4 : 3
                    if message.count == envelope, let header = try? MessageHeader.peek(message[envelope - 1]),
                       header.type == "frame", let camera = header.cameraID, let sequence = header.sequence,
                       let result = try? Message.result(ResultMessage(
                           cameraID: camera, sequence: sequence, classIndices: [0], scores: [1], queuedMilliseconds: 0,
                           computeMilliseconds: 0, batchSize: 1, workerID: id)).encoded() {
                        var reply = Array(message.dropLast())
                        reply.append(result)
                        try socket.send(reply)
                        unreturned += 1
                        if behindBroker && unreturned >= creditBatch {
                            try control(.credit(CreditMessage(credits: unreturned)))
                            unreturned = 0
                        }
                        lastSent = DispatchTime.now().uptimeNanoseconds
                    }
                    next = try receiveOrNil(socket, blocking: false)
                }
                if behindBroker && DispatchTime.now().uptimeNanoseconds - lastSent > 500_000_000 {
                    if unreturned > 0 { try control(.credit(CreditMessage(credits: unreturned))); unreturned = 0 }
                    else { try control(.heartbeat(HeartbeatMessage())) }
                    lastSent = DispatchTime.now().uptimeNanoseconds
                }
            }
        } catch {
            printError("worker \(id): \(error)")
            state.stop.store(true, ordering: .releasing)
        }
    }
}

/// The baseline: libzmq's own `zmq_proxy(frontend ROUTER, backend DEALER)` on its own thread and
/// context (as the broker has its own), bound where the broker would be.
private final class ProxyBaseline {
    /// A libzmq context pointer: contexts are thread-safe, and `zmq_ctx_shutdown` is how another
    /// thread ends a `zmq_proxy` (it returns `ETERM`), so sharing it is safe.
    private struct ContextPointer: @unchecked Sendable { let raw: UnsafeMutableRawPointer }
    private final class Bound: Sendable { let endpoints = Mutex<(String, String)?>(nil); let error = Mutex<String?>(nil) }

    let frontend: String
    let backend: String
    private let context: ContextPointer
    private let exited: DispatchSemaphore

    init(frontend frontendSpec: String, backend backendSpec: String) throws {
        guard let raw = zmq_ctx_new() else { throw CommandError("zmq_ctx_new failed") }
        let context = ContextPointer(raw: raw)
        let bound = Bound()
        let ready = DispatchSemaphore(value: 0)
        exited = spawn {
            func socket(_ type: Int32, _ spec: String) -> (UnsafeMutableRawPointer, String)? {
                guard let s = zmq_socket(context.raw, type) else { return nil }
                var linger: Int32 = 0, hwm: Int32 = 10_000
                _ = zmq_setsockopt(s, ZMQ_LINGER, &linger, 4)
                _ = zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, 4)
                _ = zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, 4)
                guard zmq_bind(s, spec) == 0 else { _ = zmq_close(s); return nil }
                var name = [CChar](repeating: 0, count: 256)
                var size = name.count
                _ = zmq_getsockopt(s, ZMQ_LAST_ENDPOINT, &name, &size)
                return (s, String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
            }
            guard let front = socket(ZMQ_ROUTER, frontendSpec) else {
                bound.error.withLock { $0 = "zmq_proxy frontend: \(String(cString: zmq_strerror(zmq_errno())))" }
                ready.signal(); return
            }
            guard let back = socket(ZMQ_DEALER, backendSpec) else {
                bound.error.withLock { $0 = "zmq_proxy backend: \(String(cString: zmq_strerror(zmq_errno())))" }
                _ = zmq_close(front.0); ready.signal(); return
            }
            bound.endpoints.withLock { $0 = (front.1, back.1) }
            ready.signal()
            _ = zmq_proxy(front.0, back.0, nil)  // returns -1/ETERM once the context is shut down
            _ = zmq_close(front.0)
            _ = zmq_close(back.0)
        }
        ready.wait()
        self.context = context
        guard let (f, b) = bound.endpoints.withLock({ $0 }) else {
            exited.wait()
            _ = zmq_ctx_term(raw)
            throw CommandError(bound.error.withLock { $0 } ?? "zmq_proxy did not start")
        }
        (frontend, backend) = (f, b)
    }

    /// Ends `zmq_proxy`, waits for its thread to close the sockets, and terminates the context.
    func stop() {
        _ = zmq_ctx_shutdown(context.raw)
        exited.wait()
        while zmq_ctx_term(context.raw) != 0 && zmq_errno() == EINTR {}
    }
}

/// The standalone ceiling: `threads` threads, each with its own session and plan at `batch`,
/// executing back to back as a saturated worker would (inputs are seeded random data).
private enum StandaloneEngine {
    static func measure(
        tail: URL, threads: Int, batch: Int, warmup: Double, duration: Double, compute: ComputeContext
    ) throws -> Double {
        let clock = CompletionClock()
        let stop = Atomic<Bool>(false)
        let failure = Mutex<String?>(nil)
        let ready = DispatchSemaphore(value: 0)
        let threadsDone = (0..<threads).map { i in
            spawn {
                let plan: ExecutionPlan
                do {
                    plan = try InferenceSession(contentsOf: tail, compute: compute).plan(batch: batch)
                } catch {
                    failure.withLock { $0 = "\(error)" }
                    ready.signal(); return
                }
                var rng = SeededGenerator(seed: UInt64(i + 1))
                for (name, _) in plan.inputTypes {
                    if let buffer = plan.inputBuffer(name) { for j in buffer.indices { buffer[j] = rng.nextNormal() } }
                }
                ready.signal()
                while !stop.load(ordering: .relaxed) {
                    plan.execute()
                    clock.record(batch)
                }
            }
        }
        for _ in 0..<threads { ready.wait() }
        Thread.sleep(forTimeInterval: warmup)
        let start = clock.sampleAfterBurst()
        Thread.sleep(forTimeInterval: duration)
        let end = clock.sampleAfterBurst()
        stop.store(true, ordering: .relaxed)
        threadsDone.forEach { $0.wait() }
        if let message = failure.withLock({ $0 }) { throw CommandError("--tail: \(message)") }
        return CompletionClock.rate(from: start, to: end)
    }
}

/// Runs `body` on a new thread; the semaphore is signalled when it returns.
private func spawn(_ body: @escaping @Sendable () -> Void) -> DispatchSemaphore {
    let done = DispatchSemaphore(value: 0)
    let thread = Thread {
        body()
        done.signal()
    }
    thread.stackSize = 8 << 20
    thread.start()
    return done
}
