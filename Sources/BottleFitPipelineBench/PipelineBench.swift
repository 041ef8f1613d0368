import BottleFitBroker
import BottleFitCore
import BottleFitEngine
import BottleFitProtocol
import BottleFitWorker
import Foundation
import Logging
import ZeroMQ

/// `bottlefit bench-pipeline`'s measurements: the broker against zmq_proxy with instant workers, and
/// the whole pipeline against the standalone engine, each with its own camera and worker clients
/// on threads of this process (docs/pipeline-benchmarks.md). The command prints; this measures.
public struct PipelineBench {
    /// tcp (127.0.0.1, ports the OS picks) or ipc (a temporary folder).
    public enum Transport: String, CaseIterable, Sendable { case tcp, ipc }

    public let cameras: Int
    /// Upper bound on one run, in seconds.
    public let timeout: Double
    public let transport: Transport
    let logger: Logger
    let endpoints: EndpointFactory
    let scratch: URL

    /// Makes the temporary folder of ipc endpoints (removed by `finish()`).
    public init(cameras: Int, timeout: Double, transport: Transport, logger: Logger) throws {
        self.cameras = cameras
        self.timeout = timeout
        self.transport = transport
        self.logger = logger
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("bottlefit-bench-\(getpid())")
        if transport == .ipc { try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true) }
        endpoints = EndpointFactory(transport: transport, directory: scratch.path)
    }

    /// Removes the ipc folder.
    public func finish() {
        if transport == .ipc { try? FileManager.default.removeItem(at: scratch) }
    }

    /// Broker mode's load: FRAMEs of `payloadBytes` bytes of bottleneck, `window` outstanding per camera.
    public static func brokerLoad(payloadBytes: Int, window: Int, warmup: Int, count: Int) -> CameraLoad {
        CameraLoad(
            model: "bench", payload: .bottleneck(QuantizedTensor(
                shape: [payloadBytes], data: (0..<payloadBytes).map { UInt8(truncatingIfNeeded: $0 &* 131) },
                parameters: QuantizationParameters(scale: 0.05, zeroPoint: 128))),
            window: window, warmup: warmup, count: count)
    }

    /// End-to-end mode's load: one random bottleneck of the tail's input shape (without the batch), and that shape.
    public static func endToEndLoad(tail: URL, window: Int) throws -> (load: CameraLoad, sampleShape: [Int]) {
        let sampleShape: [Int]
        do {
            let session = try InferenceSession(contentsOf: tail)
            guard session.optimizedGraph.inputs.count == 1 else { throw PipelineBenchError("the tail must have one input") }
            sampleShape = Array(try InferenceSession.concreteShape(session.optimizedGraph.inputs[0], batch: 1).dropFirst())
        } catch let error as PipelineBenchError { throw error } catch { throw PipelineBenchError("--tail: \(error)") }
        let elements = sampleShape.reduce(1, *)
        var rng = SeededGenerator(seed: 7)
        let load = CameraLoad(
            model: "bench", payload: .bottleneck(QuantizedTensor(
                shape: sampleShape, data: (0..<elements).map { _ in UInt8(truncatingIfNeeded: rng.next()) },
                parameters: QuantizationParameters(scale: 0.05, zeroPoint: 128))),
            window: window, warmup: 0, count: 0)
        return (load, sampleShape)
    }

    /// The standalone baseline: `threads` engine threads running the tail at `batch`, frames per second.
    public static func standalone(tail: URL, threads: Int, batch: Int, warmup: Double, duration: Double, compute: ComputeContext) throws -> Double {
        try StandaloneEngine.measure(tail: tail, threads: threads, batch: batch, warmup: warmup, duration: duration, compute: compute)
    }

    /// A broker for one round on endpoints named after `name`, its queue deep enough for every camera's window.
    private func startBroker(_ context: ZMQContext, name: String, load: CameraLoad) throws -> (Broker, BrokerEndpoints) {
        var configuration = BrokerConfiguration(
            frontendEndpoint: endpoints.make("\(name)-front"), backendEndpoint: endpoints.make("\(name)-back"),
            statsEndpoint: endpoints.make("\(name)-stats"))
        configuration.policy.queueCapacity = max(1024, 2 * cameras * load.window)
        let broker = Broker(configuration: configuration, context: context, logger: logger)
        do { return (broker, try broker.start()) } catch { throw PipelineBenchError("broker: \(error)") }
    }

    /// The broker answers UNKNOWN_MODEL until a worker serving "bench" has said READY: waits (10 s at most) for `workers`.
    private func waitForWorkers(_ broker: Broker, _ workers: Int) throws {
        let ready = Date().addingTimeInterval(10)
        while broker.counters.workersJoined < workers && Date() < ready { usleep(5000) }
        guard broker.counters.workersJoined >= workers else { throw PipelineBenchError("workers did not join the broker within 10 s") }
    }

    /// One round of broker mode: the broker between `cameras` senders and `workers` instant workers.
    public func measureBroker(round: Int, workers: Int, load: CameraLoad) throws -> Measured {
        let context = try ZMQContext()
        let (broker, bound) = try startBroker(context, name: "b\(round)", load: load)
        defer { broker.stop(); broker.waitUntilStopped() }
        let state = RunState()
        let workerThreads = (0..<workers).map { i in
            spawn { InstantWorker.run(context: context, endpoint: bound.backend, id: "instant-\(i)", behindBroker: true, state: state) }
        }
        defer { state.stop.store(true, ordering: .releasing); workerThreads.forEach { $0.wait() } }
        try waitForWorkers(broker, workers)
        return try drive(context: context, endpoint: bound.frontend, load: load, state: state)
    }

    /// One round of the baseline: zmq_proxy between the same senders and echoing workers.
    public func measureProxy(round: Int, workers: Int, load: CameraLoad) throws -> Measured {
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
    func drive(context: ZMQContext, endpoint: String, load: CameraLoad, state: RunState) throws -> Measured {
        let cameraThreads = (0..<cameras).map { i in
            spawn { CameraSender.run(context: context, endpoint: endpoint, id: "cam-\(i)", load: load, state: state) }
        }
        let deadline = Date().addingTimeInterval(timeout)
        while state.finishedAt.load(ordering: .acquiring) == 0 && Date() < deadline { usleep(2000) }
        state.stop.store(true, ordering: .releasing)
        cameraThreads.forEach { $0.wait() }
        let (t0, t1) = (state.startedAt.load(ordering: .acquiring), state.finishedAt.load(ordering: .acquiring))
        guard t1 > t0 else {
            throw PipelineBenchError("run timed out after \(timeout) s: \(state.completed.load(ordering: .relaxed)) round trips, \(state.errors.load(ordering: .relaxed)) errors")
        }
        let cpu = state.cpuAtFinish.load(ordering: .relaxed) &- state.cpuAtStart.load(ordering: .relaxed)
        return Measured(
            rate: Double(load.count) / (Double(t1 - t0) / 1e9), cpuMicroseconds: Double(cpu) / Double(load.count),
            errors: state.errors.load(ordering: .relaxed))
    }

    /// One round of end-to-end mode: the broker and `workers` real tail workers, frames per second
    /// over `duration` after `warmup`, the mean batch and the frames answered with ERROR.
    public func measureEndToEnd(
        round: Int, tail: URL, workers: Int, maxBatch: Int, credit: Int, load: CameraLoad,
        warmup: Double, duration: Double, compute: ComputeContext
    ) throws -> (rate: Double, meanBatch: Double, errors: Int) {
        let context = try ZMQContext()
        let (broker, bound) = try startBroker(context, name: "e\(round)", load: load)
        defer { broker.stop(); broker.waitUntilStopped() }
        var tailWorkers: [TailWorker] = []
        defer { tailWorkers.forEach { $0.stop() }; tailWorkers.forEach { $0.waitUntilStopped(timeout: .seconds(10)) } }
        for i in 0..<workers {
            let worker = TailWorker(configuration: WorkerConfiguration(
                endpoint: bound.backend, workerID: "bench-w\(i)", models: ["bench": WorkerModelFiles(tail: tail)],
                credit: credit, maxBatch: maxBatch, compute: compute), context: context, logger: logger)
            do { try worker.start() } catch { throw PipelineBenchError("worker: \(error)") }
            tailWorkers.append(worker)
        }
        try waitForWorkers(broker, workers)
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

}

/// A benchmark that could not run, as text.
public struct PipelineBenchError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
