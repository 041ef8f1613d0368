import ArgumentParser
import BottleFitPipelineBench
import Foundation
import Logging

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
    typealias Transport = PipelineBench.Transport

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
        let bench = try PipelineBench(cameras: cameras, timeout: timeout, transport: transport, logger: logger)
        defer { bench.finish() }
        do {
            switch mode {
            case .broker: try runBrokerMode(bench)
            case .endToEnd: try runEndToEndMode(bench)
            }
        } catch let error as PipelineBenchError {
            throw CommandError(error.description)
        }
    }

    // MARK: Broker mode

    private func runBrokerMode(_ bench: PipelineBench) throws {
        let (workers, window, runs) = (self.workers ?? 2, self.window ?? 64, self.runs ?? 5)
        let (payloadBytes, warmup, count) = (self.payloadBytes ?? 10240, self.warmup ?? 2000, self.count ?? 20000)
        let load = PipelineBench.brokerLoad(payloadBytes: payloadBytes, window: window, warmup: warmup, count: count)
        var brokerRates: [Double] = [], proxyRates: [Double] = [], brokerCPU: [Double] = [], proxyCPU: [Double] = []
        var brokerDrops = 0
        for round in 0..<runs {
            let b = try bench.measureBroker(round: round, workers: workers, load: load)
            brokerRates.append(b.rate)
            brokerCPU.append(b.cpuMicroseconds)
            brokerDrops += b.errors
            let p = try bench.measureProxy(round: round, workers: workers, load: load)
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

    // MARK: End-to-end mode

    private func runEndToEndMode(_ bench: PipelineBench) throws {
        let tailURL = URL(fileURLWithPath: tail!)
        let (workers, runs, maxBatch, credit) = (self.workers ?? 1, self.runs ?? 3, self.maxBatch ?? 8, self.credit ?? 16)
        let (warmupSeconds, duration) = (self.warmupSeconds ?? 2, self.duration ?? 10)
        let window = self.window ?? max(1, (2 * credit * workers + cameras - 1) / cameras)
        let compute = threadOptions.makeComputeContext()
        let (load, sampleShape) = try PipelineBench.endToEndLoad(tail: tailURL, window: window)
        var standalone: [Double] = [], pipeline: [Double] = [], batches: [Double] = []
        var errors = 0
        for round in 0..<runs {
            standalone.append(try PipelineBench.standalone(
                tail: tailURL, threads: workers, batch: maxBatch, warmup: warmupSeconds, duration: duration, compute: compute))
            let p = try bench.measureEndToEnd(
                round: round, tail: tailURL, workers: workers, maxBatch: maxBatch, credit: credit, load: load,
                warmup: warmupSeconds, duration: duration, compute: compute)
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

    private func median(_ values: [Double]) -> Double {
        let s = values.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }

    private func fmt(_ v: Double) -> String { String(format: "%.4f", v) }
}

extension PipelineBench.Transport: ExpressibleByArgument {}
