import ArgumentParser
import BottleFitFleet
import BottleFitEngine
import BottleFitLifecycle
import BottleFitSecurity
import BottleFitWorker
import Foundation
import Logging
import ZeroMQ

struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: RoleCommandName.worker,
        abstract: "Run a tail worker: decoder + tail for bottleneck frames, the full model for JPEG frames.",
        discussion: """
            Connects to the broker's backend, announces its models and credit (READY), and answers \
            every FRAME with a RESULT (top-k softmax probabilities, queued and compute times, batch \
            size) or an ERROR. Frames waiting together run as one batch, up to --max-batch. A broker \
            silent for --liveness heartbeats is reconnected to. SIGINT or SIGTERM drains: no new \
            credit, the frames in hand are answered, DISCONNECT, exit; the counters are printed. \
            --metrics HOST:PORT serves them as Prometheus text on GET /metrics (batch sizes, compute \
            and wait times as histograms) and GET /healthz (200 while serving; 503 while loading \
            models or stopping); see docs/metrics.md.
            --model NAME=TAIL.onnx serves bottleneck frames of model NAME; NAME=TAIL.onnx,FULL.onnx \
            also serves offload (JPEG) frames; NAME=,FULL.onnx only those. Repeat for more models.
            Defaults: --credit 16, --max-batch 8, --top-k 5, --heartbeat-ms 1000, --liveness 3, --threads 1, no --metrics.
            Example: bottlefit worker --broker tcp://127.0.0.1:5556 --id w1 --model bf12=tail.onnx,full.onnx --threads 2 --metrics 127.0.0.1:9501
            """
    )

    @Option(name: .role(CommonFlags.broker), help: "The broker's backend endpoint.") var broker: String
    @Option(name: .role(CommonFlags.id), help: "Worker id (1 to 128 bytes).") var id = "worker-\(ProcessInfo.processInfo.processIdentifier)"
    @Option(name: .role(CommonFlags.model), help: "NAME=TAIL.onnx[,FULL.onnx]; repeatable.") var model: [String] = []
    @Option(name: .role(WorkerFlags.credit), help: "Frames the worker accepts at once.") var credit = 16
    @Option(name: .role(WorkerFlags.maxBatch), help: "Largest batch it runs.") var maxBatch = 8
    @Option(help: "Classes per RESULT.") var topK = 5
    @Option(help: "Heartbeat interval in milliseconds.") var heartbeatMs = 1000
    @Option(help: "Heartbeats the broker may miss before the worker reconnects.") var liveness = 3
    @Option(name: .role(CommonFlags.curveKey), help: CurveOptionHelp.curveKey) var curveKey: String?
    @Option(name: .role(CommonFlags.brokerKey), help: CurveOptionHelp.brokerKey) var brokerKey: String?
    @OptionGroup var threadOptions: ThreadOptions
    @OptionGroup var metricsOptions: MetricsOptions
    @Option(name: .role(CommonFlags.logLevel), help: "Log level: trace, debug, info, notice, warning, error, critical.") var logLevel = "info"
    @OptionGroup var logFormat: LogFormatOption

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level \(logLevel)") }
        try CurveOptionHelp.requireTogether(curveKey, [("--broker-key", brokerKey)])
        guard !model.isEmpty else { throw ValidationError("give at least one --model NAME=TAIL.onnx[,FULL.onnx]") }
        let problems = try makeConfiguration().problems
        guard problems.isEmpty else { throw ValidationError(problems.joined(separator: "; ")) }
    }

    func models() throws -> [String: WorkerModelFiles] {
        var out: [String: WorkerModelFiles] = [:]
        for spec in model {
            guard let eq = spec.firstIndex(of: "="), eq != spec.startIndex else {
                throw ValidationError("--model \(spec): expected NAME=TAIL.onnx[,FULL.onnx]")
            }
            let name = String(spec[..<eq])
            let files = spec[spec.index(after: eq)...].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard (1...2).contains(files.count), !files.allSatisfy(\.isEmpty) else {
                throw ValidationError("--model \(spec): expected NAME=TAIL.onnx[,FULL.onnx]")
            }
            guard out[name] == nil else { throw ValidationError("--model \(name) given twice") }
            for f in files where !f.isEmpty && !FileManager.default.fileExists(atPath: f) {
                throw ValidationError("--model \(name): no file \(f)")
            }
            out[name] = WorkerModelFiles(
                tail: files[0].isEmpty ? nil : URL(fileURLWithPath: files[0]),
                full: files.count > 1 && !files[1].isEmpty ? URL(fileURLWithPath: files[1]) : nil)
        }
        return out
    }

    /// The worker's configuration; `compute` is the single-threaded default while validating.
    func makeConfiguration(compute: ComputeContext = .singleThreaded) throws -> WorkerConfiguration {
        var configuration = WorkerConfiguration(
            endpoint: broker, workerID: id, models: try models(), credit: credit, maxBatch: maxBatch, topK: topK,
            compute: compute, heartbeatInterval: .milliseconds(heartbeatMs), liveness: liveness)
        if let curveKey, let brokerKey {
            configuration.curve = try CurveOptionHelp.loading { () throws(SecurityError) in
                try CurveClient(secretKeyFile: curveKey, serverKeyFile: brokerKey)
            }
        }
        return configuration
    }

    func run() async throws {
        let logger = logFormat.bootstrap(role: "worker", level: logLevel)
        let context = try ZMQContext()
        let worker = TailWorker(
            configuration: try makeConfiguration(compute: threadOptions.makeComputeContext()), context: context, logger: logger)
        try await RoleRunner.run(
            worker, name: "worker", logger: logger, metrics: metricsOptions, families: { [weak worker] in worker?.metricFamilies() ?? [] })
        let c = worker.counters
        let errors = c.errors.sorted { "\($0.key)" < "\($1.key)" }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
        print("received=\(c.received) completed=\(c.completed) errors[\(errors.isEmpty ? "none" : errors)] batches=\(c.batches) reconnects=\(c.reconnects) abandoned=\(c.abandoned)")
    }
}
