import Foundation
import ZeroMQ

/// The load generator's entry point for `bottlefit loadgen` and tests.
public enum Loadgen {
    /// Exit statuses of `bottlefit loadgen`.
    public enum Status: Int32, Sendable {
        case ok = 0
        /// Could not run: the topology's fleet did not start, a socket or the report failed.
        case invalid = 1
        /// Refused before anything started: a bad option, scenario key, profile or topology (EX_USAGE).
        case usage = 64
        /// The accounting invariant failed: offered ≠ completed + dropped.
        case unaccounted = 2
        /// A `--fail-if` threshold did not hold.
        case thresholdFailed = 3
    }

    /// Runs `plan` against the broker of `options` (or the in-process sink), evaluates thresholds,
    /// and returns the report. `context` lets tests share an inproc:// context with a broker.
    public static func run(
        plan: LoadgenPlan, options: LoadgenRunOptions, context: ZMQContext? = nil, command: [String] = [],
        progress: ((LoadgenProgress) -> Void)? = nil, shouldStop: () -> Bool = { false }
    ) throws(LoadgenError) -> LoadgenReport {
        if plan.fidelity == .real {
            guard !options.sink else { throw LoadgenError("fidelity real needs a broker, not the sink") }
            let ctx: ZMQContext
            do { ctx = try context ?? ZMQContext() } catch { throw LoadgenError("cannot make a ZeroMQ context: \(error)") }
            var workers: EmulatedWorkers?
            if let settings = options.workers {
                let pool = EmulatedWorkers(settings: settings, context: ctx)
                try pool.start()
                workers = pool
            }
            defer { workers?.stop() }
            var report = try RealFleet.run(plan: plan, options: options, context: ctx, command: command, progress: progress, shouldStop: shouldStop)
            if let workers, let s = options.workers {
                report.fidelity = "real (emulated workers)"
                report.emulatedWorkers = LoadgenReport.EmulatedWorkersReport(
                    count: s.count, serviceMs: s.serviceMilliseconds, batchExtraMs: s.batchExtraMilliseconds, maxBatch: s.maxBatch,
                    distribution: s.distribution.rawValue, capacityPerS: s.capacity, served: workers.served, expired: workers.expired)
            }
            report.thresholds = options.thresholds.map { $0.evaluate(report) }
            if context == nil { try? ctx.shutdown() }
            return report
        }
        // Real-time scheduling first: a refusal costs no socket and no frame.
        let saved = try options.realtimePriority.map { p throws(LoadgenError) in try RealtimeScheduling.enter(priority: p) }
        defer { saved.map(RealtimeScheduling.leave) }
        let transport: any LoadgenTransport
        var ownContext: ZMQContext?
        if options.sink {
            transport = InstantSinkTransport(connections: plan.connections)
        } else {
            guard let broker = options.broker else { throw LoadgenError("a broker endpoint is required") }
            let ctx: ZMQContext
            if let context { ctx = context } else {
                do { ctx = try ZMQContext(realtimePriority: options.realtimePriority) } catch {
                    throw LoadgenError("cannot make a ZeroMQ context: \(error)")
                }
                ownContext = ctx
            }
            let perConnection = (plan.cameraCount + plan.connections - 1) / plan.connections
            let maxInFlight = plan.groups.map(\.maxInFlight).max() ?? 8
            transport = try ZMQLoadgenTransport(
                context: ctx, broker: broker, connections: plan.connections, sendHighWaterMark: perConnection * maxInFlight * 2 + 16,
                directives: options.directives, stats: options.stats, curve: options.curve)
        }
        var workers: EmulatedWorkers?
        if let settings = options.workers, let context = ownContext ?? context {
            let pool = EmulatedWorkers(settings: settings, context: context)
            try pool.start()
            workers = pool
        }
        defer { workers?.stop() }
        let engine = try LoadgenEngine(plan: plan, transport: transport, clock: SystemLoadgenClock())
        engine.onProgress = progress
        var report = engine.run(command: command, shouldStop: shouldStop)
        report.realtimePriority = options.realtimePriority
        if options.sink { report.fidelity = "emulated (instant sink)" }
        if let workers, let s = options.workers {
            report.fidelity = "emulated (emulated workers)"
            report.emulatedWorkers = LoadgenReport.EmulatedWorkersReport(
                count: s.count, serviceMs: s.serviceMilliseconds, batchExtraMs: s.batchExtraMilliseconds, maxBatch: s.maxBatch,
                distribution: s.distribution.rawValue, capacityPerS: s.capacity, served: workers.served, expired: workers.expired)
        }
        report.thresholds = options.thresholds.map { $0.evaluate(report) }
        try? ownContext?.shutdown()
        return report
    }

    /// The exit status a report earns: the invariant first, then the thresholds.
    public static func status(of report: LoadgenReport) -> Status {
        if report.totals.unaccounted != 0 { return .unaccounted }
        if report.thresholds.contains(where: { !$0.passed }) { return .thresholdFailed }
        return .ok
    }

    /// Writes the JSON and HTML outputs that `options` asks for.
    public static func write(_ report: LoadgenReport, options: LoadgenRunOptions) throws(LoadgenError) {
        do {
            if let path = options.report { try report.json().write(to: URL(fileURLWithPath: path), options: .atomic) }
            if let path = options.html { try LoadgenHTML.render(report).write(toFile: path, atomically: true, encoding: .utf8) }
        } catch {
            throw LoadgenError("cannot write the report: \(error)")
        }
    }
}
