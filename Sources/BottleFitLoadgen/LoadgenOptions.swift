import BottleFitCore
import BottleFitDevice
import Foundation

/// One setting of a run: its scenario key, its command-line flag (`--` + the key with dashes), and
/// whether it belongs to a camera group. The table below is the one list of settings: the scenario
/// reader accepts exactly these keys, `bottlefit loadgen` declares exactly these options (a test
/// checks both), and docs/loadgen.md documents them.
public struct LoadgenOption: Sendable {
    public var key: String
    public var perGroup: Bool
    public var repeatable: Bool
    public var help: String
    public var defaultValue: String?

    public var flag: String { "--" + key.replacingOccurrences(of: "_", with: "-") }

    public static let all: [LoadgenOption] = [
        // The run.
        .init(key: "broker", perGroup: false, repeatable: false, help: "the broker's frontend (cameras connect here); required unless sink or topology is given", defaultValue: nil),
        .init(key: "topology", perGroup: false, repeatable: false, help: "a topology file (as `bottlefit up` reads): its broker, workers and controller are started before the first frame and stopped by PID at the end (its cameras are left out: the load generator is the fleet); broker, stats and directives default to its endpoints", defaultValue: nil),
        .init(key: "directives", perGroup: false, repeatable: false, help: "the controller's directive PUB: cameras obey DIRECTIVEs and the report records them", defaultValue: nil),
        .init(key: "stats", perGroup: false, repeatable: false, help: "the broker's STATS PUB: the report records queue depth and queue time over time", defaultValue: nil),
        .init(key: "fidelity", perGroup: false, repeatable: false, help: "emulated (cameras modelled from device and uplink profiles, hundreds in one loop) or real (real cameras in this process run their head and whole model with the engine: needs head/full, shape steady, arrivals constant, uplink ideal)", defaultValue: "emulated"),
        .init(key: "sink", perGroup: false, repeatable: false, help: "answer every FRAME in-process at once (no broker): measures the load generator itself", defaultValue: "false"),
        .init(key: "duration", perGroup: false, repeatable: false, help: "seconds of arrivals (a drain follows)", defaultValue: "30"),
        .init(key: "drain_ms", perGroup: false, repeatable: false, help: "how long to wait for frames still out after the last arrival", defaultValue: "largest slo_ms + 1000"),
        .init(key: "connections", perGroup: false, repeatable: false, help: "DEALER connections to the broker, cameras spread round robin (the broker's queues are per camera id either way)", defaultValue: "min(cameras, 16)"),
        .init(key: "seed", perGroup: false, repeatable: false, help: "seed of every random choice (phases, Poisson gaps, jitter, loss, payload bytes)", defaultValue: "1"),
        .init(key: "sample_ms", perGroup: false, repeatable: false, help: "time-series resolution of the report and the progress line", defaultValue: "1000"),
        .init(key: "latency_report_ms", perGroup: false, repeatable: false, help: "cameras' latency reports to the broker (HEARTBEAT lr); 0 sends none", defaultValue: "1000"),
        .init(key: "profiles", perGroup: false, repeatable: false, help: "folder of devices/, uplinks/ and models.yaml", defaultValue: "profiles"),
        .init(key: "report", perGroup: false, repeatable: false, help: "write the JSON report here (schema: docs/loadgen.md)", defaultValue: nil),
        .init(key: "html", perGroup: false, repeatable: false, help: "write a self-contained HTML page with plots here", defaultValue: nil),
        .init(key: "fail_if", perGroup: false, repeatable: true, help: "exit 3 unless this holds, e.g. 'p99<200ms', 'unaccounted==0', 'edge_fraction>0.9' (repeatable)", defaultValue: nil),
        .init(key: "progress", perGroup: false, repeatable: false, help: "print a live progress line on stderr", defaultValue: "true"),
        .init(key: "realtime_priority", perGroup: false, repeatable: false, help: "run the event loop and its ZeroMQ I/O thread under SCHED_FIFO at this priority, 1...99, so that other work on a busy machine does not make the generator late (emulated fidelity; needs root, CAP_SYS_NICE or `ulimit -r` of at least the priority, checked before anything starts)", defaultValue: "off: the normal scheduler"),
        .init(key: "emulate_workers", perGroup: false, repeatable: false, help: "also run this many emulated tail workers (a service-time model speaking the worker protocol) on worker_backend", defaultValue: "0"),
        .init(key: "worker_backend", perGroup: false, repeatable: false, help: "the broker's backend, for emulated workers", defaultValue: nil),
        .init(key: "worker_service_ms", perGroup: false, repeatable: false, help: "emulated workers: service time of a batch of one frame (86 ms: one ResNet-50 tail worker's 11.6 frames/s, issue 10)", defaultValue: "86"),
        .init(key: "worker_batch_extra_ms", perGroup: false, repeatable: false, help: "emulated workers: time each further frame adds to a batch", defaultValue: "worker_service_ms"),
        .init(key: "worker_max_batch", perGroup: false, repeatable: false, help: "emulated workers: largest batch", defaultValue: "1"),
        .init(key: "worker_credit", perGroup: false, repeatable: false, help: "emulated workers: READY credit, 1...65536 (frames a worker holds at once)", defaultValue: "2 x worker_max_batch"),
        .init(key: "worker_service", perGroup: false, repeatable: false, help: "emulated workers: constant or exponential service times", defaultValue: "constant"),
        // Per camera group (at the top level of a scenario they are defaults for every group).
        .init(key: "name", perGroup: true, repeatable: false, help: "the group's name (camera ids are NAME-0000, ...; cam-0000, ... with one group)", defaultValue: "fleet"),
        .init(key: "cameras", perGroup: true, repeatable: false, help: "cameras in the group", defaultValue: "1"),
        .init(key: "rate", perGroup: true, repeatable: false, help: "frames per second per camera (the steady rate, a ramp's start, the rate before a step, a burst's on rate)", defaultValue: "5"),
        .init(key: "arrivals", perGroup: true, repeatable: false, help: "constant or poisson", defaultValue: "constant"),
        .init(key: "mode", perGroup: true, repeatable: false, help: "split, local, offload, or a mix such as split=0.6,offload=0.2,local=0.2", defaultValue: "split"),
        .init(key: "model", perGroup: true, repeatable: false, help: "model name sent in every FRAME (what the workers serve)", defaultValue: "resnet50-bottlefit-c12"),
        .init(key: "model_profile", perGroup: true, repeatable: false, help: "entry of models.yaml giving MACs and bottleneck shape", defaultValue: "the model name"),
        .init(key: "device", perGroup: true, repeatable: false, help: "device profile (profiles/devices/NAME.yaml, a path, or ideal)", defaultValue: "raspberry-pi-4"),
        .init(key: "uplink", perGroup: true, repeatable: false, help: "uplink profile (profiles/uplinks/NAME.yaml, a path, or ideal)", defaultValue: "wifi-20mbit"),
        .init(key: "shape", perGroup: true, repeatable: false, help: "steady, ramp, step, burst or schedule", defaultValue: "steady"),
        .init(key: "ramp_to", perGroup: true, repeatable: false, help: "ramp: the rate at the end of the ramp", defaultValue: nil),
        .init(key: "ramp_seconds", perGroup: true, repeatable: false, help: "ramp: its length", defaultValue: "the duration"),
        .init(key: "step_at", perGroup: true, repeatable: false, help: "step: seconds after the start", defaultValue: nil),
        .init(key: "step_rate", perGroup: true, repeatable: false, help: "step: the rate after the step", defaultValue: nil),
        .init(key: "burst_on", perGroup: true, repeatable: false, help: "burst: seconds on (at rate)", defaultValue: nil),
        .init(key: "burst_off", perGroup: true, repeatable: false, help: "burst: seconds off", defaultValue: nil),
        .init(key: "burst_off_rate", perGroup: true, repeatable: false, help: "burst: the rate while off", defaultValue: "0"),
        .init(key: "schedule", perGroup: true, repeatable: false, help: "schedule: a file of `SECONDS RATE` lines (piecewise constant)", defaultValue: nil),
        .init(key: "slo_ms", perGroup: true, repeatable: false, help: "each frame's deadline after its scheduled time", defaultValue: "250"),
        .init(key: "max_in_flight", perGroup: true, repeatable: false, help: "frames a camera keeps at the edge; later ones wait (latency still counts)", defaultValue: "8"),
        .init(key: "source", perGroup: true, repeatable: false, help: "offload payloads: synthetic (images encoded once here; flat, so their JPEGs are small), textured (1/f-noise frames whose JPEGs are as large as photographs'), jpeg-dir:PATH (JPEG files sent as they are, up to `images` of them) or fashion-mnist (Debian's dataset-fashion-mnist test images, JPEG-encoded once, sent with their labels: edge accuracy is reported)", defaultValue: "synthetic"),
        .init(key: "jpeg_quality", perGroup: true, repeatable: false, help: "offload: JPEG quality of the precomputed payloads", defaultValue: "90"),
        .init(key: "head", perGroup: true, repeatable: false, help: "fidelity real: the head ONNX model the cameras run (split mode)", defaultValue: nil),
        .init(key: "full", perGroup: true, repeatable: false, help: "fidelity real: the whole ONNX model the cameras run (local mode and fallback)", defaultValue: nil),
        .init(key: "images", perGroup: true, repeatable: false, help: "offload: distinct synthetic images encoded once each", defaultValue: "8"),
    ]

    public static let keys = all.map(\.key)
    static let groupKeys = all.filter(\.perGroup).map(\.key)
}

/// A setting's text and where it came from, for error messages: `FILE:LINE: key` or `--flag`.
public struct LoadgenSetting: Sendable, Equatable {
    public var values: [String]
    public var origin: String
    public init(_ values: [String], origin: String) {
        self.values = values
        self.origin = origin
    }
    var value: String { values.last ?? "" }
}

/// Settings as written (scenario, then command line on top), before they are checked.
public struct LoadgenSettings: Sendable {
    /// Top-level settings (run keys, and group keys as defaults for every group).
    public var top: [String: LoadgenSetting] = [:]
    /// One map per `groups:` entry; empty means one group made of the top-level keys.
    public var groups: [[String: LoadgenSetting]] = []
    /// The scenario's folder: relative paths (schedule files) are taken from there.
    public var baseDirectory: String?

    public init() {}

    /// Command-line values win over the scenario: a run key replaces the scenario's, a group key
    /// replaces that key in every group.
    public mutating func apply(commandLine: [String: [String]]) {
        for (key, values) in commandLine where !values.isEmpty {
            let option = LoadgenOption.all.first { $0.key == key }
            let setting = LoadgenSetting(values, origin: option?.flag ?? "--\(key)")
            top[key] = setting
            if option?.perGroup == true {
                for i in groups.indices { groups[i][key] = setting }
            }
        }
    }
}

/// Everything a run needs besides the plan: where to connect and what to write.
public struct LoadgenRunOptions: Sendable {
    public var broker: String?
    /// A topology file whose broker, workers and controller the command starts and stops around the run.
    public var topology: String?
    public var directives: String?
    public var stats: String?
    public var sink: Bool
    public var report: String?
    public var html: String?
    public var thresholds: [Threshold]
    public var progress: Bool
    /// Emulated tail workers to run next to the cameras, if any.
    public var workers: EmulatedWorkerSettings?
    /// CURVE for every socket to the broker and the controller (`--curve-key`), or plain text.
    /// One key pair for all the load generator's cameras: they are one client of the broker.
    public var curve: CameraCurve? = nil
    /// `SCHED_FIFO` priority of the event loop and its ZeroMQ I/O thread (`realtime_priority`), or the normal scheduler.
    public var realtimePriority: Int? = nil
}

extension LoadgenSettings {
    /// The largest value of each number setting (none may be negative): a camera's rate as `bottlefit device --rate`
    /// allows, times up to a year, emulated service times up to an hour. Beyond them a schedule or a
    /// `Duration` would overflow.
    static let numberLimits: [String: (Double, String)] = [
        "rate": (100_000, "frames per second"), "ramp_to": (100_000, "frames per second"),
        "step_rate": (100_000, "frames per second"), "burst_off_rate": (100_000, "frames per second"),
        "duration": (31_536_000, "seconds (a year)"), "ramp_seconds": (31_536_000, "seconds (a year)"),
        "step_at": (31_536_000, "seconds (a year)"), "burst_on": (31_536_000, "seconds (a year)"),
        "burst_off": (31_536_000, "seconds (a year)"),
        "worker_service_ms": (3_600_000, "ms (an hour)"), "worker_batch_extra_ms": (3_600_000, "ms (an hour)"),
    ]

    /// Checks every setting and loads every profile: the run is refused here, before any socket
    /// is opened, when anything is impossible (rate 0, an unknown profile, a profile missing a field).
    public func resolve() throws(LoadgenError) -> (LoadgenPlan, LoadgenRunOptions) {
        func get(_ map: [String: LoadgenSetting], _ key: String) -> LoadgenSetting? { map[key] ?? top[key] }
        func fail(_ s: LoadgenSetting, _ key: String, _ reason: String) -> LoadgenError {
            LoadgenError("\(s.origin): \(reason)")
        }
        func number(_ map: [String: LoadgenSetting], _ key: String) throws(LoadgenError) -> Double? {
            guard let s = get(map, key) else { return nil }
            var text = s.value.trimmingCharacters(in: .whitespaces).lowercased()
            var scale = 1.0
            if key == "duration" || key.hasPrefix("burst_o") && key != "burst_off_rate" || key == "step_at" || key == "ramp_seconds" {
                if text.hasSuffix("ms") { text.removeLast(2); scale = 0.001 } else if text.hasSuffix("s") { text.removeLast(); scale = 1 }
                else if text.hasSuffix("m") { text.removeLast(); scale = 60 }
            }
            guard let v = Double(text), v.isFinite else { throw fail(s, key, "expected a number, found \(s.value)") }
            if let (limit, unit) = Self.numberLimits[key] {
                guard v >= 0 else { throw fail(s, key, "must not be negative") }
                guard v * scale <= limit else { throw fail(s, key, "must be at most \(Int(limit)) \(unit), not \(s.value)") }
            }
            return v * scale
        }
        func integer(_ map: [String: LoadgenSetting], _ key: String, _ range: ClosedRange<Int>) throws(LoadgenError) -> Int? {
            guard let s = get(map, key) else { return nil }
            guard let v = Int(s.value.trimmingCharacters(in: .whitespaces)) else { throw fail(s, key, "expected an integer, found \(s.value)") }
            guard range.contains(v) else { throw fail(s, key, "must be \(range.lowerBound)...\(range.upperBound), not \(v)") }
            return v
        }
        func positive(_ map: [String: LoadgenSetting], _ key: String) throws(LoadgenError) -> Double? {
            guard let v = try number(map, key) else { return nil }
            guard v > 0 else { throw fail(get(map, key)!, key, "must be positive, not \(v)") }
            return v
        }
        func flag(_ key: String, default d: Bool) throws(LoadgenError) -> Bool {
            guard let s = top[key] else { return d }
            switch s.value.lowercased() {
            case "true", "yes", "on", "1": return true
            case "false", "no", "off", "0": return false
            default: throw fail(s, key, "expected true or false, found \(s.value)")
            }
        }

        // Every number given is checked, whether or not this run uses it (worker_service_ms without
        // emulate_workers, ramp_to with shape steady): a bad value is an error even where it is inert.
        for map in [top] + groups {
            for key in Self.numberLimits.keys.sorted() where map[key] != nil { _ = try number(map, key) }
        }
        for (key, range) in [("worker_max_batch", 1...4096), ("worker_credit", 1...65536)] { _ = try integer([:], key, range) }
        let library = ProfileLibrary(directory: top["profiles"]?.value ?? "profiles")
        let duration = try positive([:], "duration") ?? 30
        let groupMaps = groups.isEmpty ? [[:]] : groups
        let fidelityText = top["fidelity"]?.value ?? "emulated"
        guard let fidelity = LoadgenPlan.Fidelity(rawValue: fidelityText) else {
            throw fail(top["fidelity"]!, "fidelity", "expected emulated or real, found \(fidelityText)")
        }
        func path(_ s: LoadgenSetting) -> String {
            s.value.hasPrefix("/") || baseDirectory == nil || s.origin.hasPrefix("--") ? s.value : "\(baseDirectory!)/\(s.value)"
        }
        var planGroups: [LoadgenPlan.Group] = []
        for (gi, map) in groupMaps.enumerated() {
            let name = get(map, "name")?.value ?? (groupMaps.count == 1 ? "fleet" : "group-\(gi + 1)")
            let cameras = try integer(map, "cameras", 1...100_000) ?? 1
            let rate = try number(map, "rate") ?? 5
            if rate < 0 { throw fail(get(map, "rate")!, "rate", "must not be negative") }
            let shapeName = get(map, "shape")?.value ?? "steady"
            let shape: LoadShape
            func need(_ key: String) throws(LoadgenError) -> Double {
                guard let v = try number(map, key) else {
                    let where_ = get(map, "shape")?.origin ?? "--shape"
                    throw LoadgenError("\(where_): shape \(shapeName) needs \(key)")
                }
                guard v >= 0 else { throw fail(get(map, key)!, key, "must not be negative") }
                return v
            }
            switch shapeName {
            case "steady": shape = .steady(rate: rate)
            case "ramp": shape = .ramp(from: rate, to: try need("ramp_to"), over: try number(map, "ramp_seconds") ?? duration)
            case "step": shape = .step(before: rate, at: try need("step_at"), after: try need("step_rate"))
            case "burst":
                shape = .burst(onRate: rate, onSeconds: try need("burst_on"), offRate: try number(map, "burst_off_rate") ?? 0,
                               offSeconds: try need("burst_off"))
            case "schedule":
                guard let s = get(map, "schedule") else { throw LoadgenError("\(get(map, "shape")!.origin): shape schedule needs schedule (a file)") }
                let path = s.value.hasPrefix("/") || baseDirectory == nil || s.origin.hasPrefix("--") ? s.value : "\(baseDirectory!)/\(s.value)"
                let text: String
                do { text = try FileBytes.text(of: path) } catch { throw fail(s, "schedule", error.description) }
                shape = .schedule(try LoadShape.parseSchedule(text, path: path))
            default:
                throw fail(get(map, "shape")!, "shape", "unknown shape \(shapeName) (steady, ramp, step, burst, schedule)")
            }
            guard shape.peakRate > 0 else {
                throw fail(get(map, "rate") ?? LoadgenSetting([], origin: "--rate"), "rate", "the rate is 0 for the whole run: no frame would be offered")
            }
            let arrivalsText = get(map, "arrivals")?.value ?? "constant"
            guard let arrivals = ArrivalProcess(rawValue: arrivalsText) else {
                throw fail(get(map, "arrivals")!, "arrivals", "expected constant or poisson, found \(arrivalsText)")
            }
            let modes = try Self.parseModes(get(map, "mode"))
            let modelName = get(map, "model")?.value ?? "resnet50-bottlefit-c12"
            func profile<T>(_ key: String, _ fallback: String, _ load: (String) throws(LoadgenError) -> T) throws(LoadgenError) -> T {
                let s = get(map, key)
                do { return try load(s?.value ?? fallback) } catch {
                    throw s.map { fail($0, key, error.description) } ?? LoadgenError("\(key) (default \(fallback)): \(error.description)")
                }
            }
            var jpegDirectory: String?
            var fashionMNIST = false, textured = false
            if let s = get(map, "source"), s.value == "fashion-mnist" {
                fashionMNIST = true
            } else if let s = get(map, "source"), s.value == "textured" {
                textured = true
            } else if let s = get(map, "source"), s.value != "synthetic" {
                guard s.value.hasPrefix("jpeg-dir:"), s.value.count > 9 else {
                    throw fail(s, "source", "expected synthetic, textured, jpeg-dir:PATH or fashion-mnist, found \(s.value)")
                }
                let dir = String(s.value.dropFirst(9))
                jpegDirectory = dir.hasPrefix("/") || baseDirectory == nil || s.origin.hasPrefix("--") ? dir : "\(baseDirectory!)/\(dir)"
            }
            let model = try profile("model_profile", modelName, library.model)
            let device = try profile("device", "raspberry-pi-4", library.device)
            let uplink = try profile("uplink", fidelity == .real ? "ideal" : "wifi-20mbit", library.uplink)
            let head = get(map, "head").map(path), full = get(map, "full").map(path)
            if fidelity == .real {
                // Real cameras use real sockets and this machine's compute: nothing to emulate.
                if let s = get(map, "uplink"), s.value != "ideal" {
                    throw fail(s, "uplink", "fidelity real sends on real sockets: uplink must be ideal (shape a real link with netns and tc instead)")
                }
                if textured { throw fail(get(map, "source")!, "source", "textured payloads are emulated only; fidelity real takes synthetic, jpeg-dir:PATH or fashion-mnist") }
                if case .steady = shape {} else { throw fail(get(map, "shape")!, "shape", "fidelity real paces frames as a camera does: shape steady only") }
                if arrivals != .constant { throw fail(get(map, "arrivals")!, "arrivals", "fidelity real paces frames as a camera does: arrivals constant only") }
                for (key, file) in [("head", head), ("full", full)] {
                    if let file, !FileManager.default.fileExists(atPath: file) { throw fail(get(map, key)!, key, "no file \(file)") }
                }
                let needsHead = modes.contains { $0.mode == .split }
                if needsHead && head == nil { throw LoadgenError("group \(name): fidelity real with split cameras needs head (--head HEAD.onnx)") }
                if full == nil && modes.contains(where: { $0.mode == .local }) {
                    throw LoadgenError("group \(name): fidelity real with local cameras needs full (--full FULL.onnx)")
                }
            } else {
                for key in ["head", "full"] {
                    if let s = get(map, key) { throw fail(s, key, "head and full are for fidelity real (emulated cameras take their times from the device profile)") }
                }
            }
            planGroups.append(LoadgenPlan.Group(
                name: name, cameras: cameras, shape: shape, arrivals: arrivals, modes: modes, modelName: modelName, model: model,
                device: device, uplink: uplink, jpegQuality: try integer(map, "jpeg_quality", 1...100) ?? 90,
                images: try integer(map, "images", 1...1024) ?? 8, jpegDirectory: jpegDirectory, fashionMNIST: fashionMNIST, textured: textured, headModel: head, fullModel: full,
                sloMilliseconds: UInt64(try integer(map, "slo_ms", 1...3_600_000) ?? 250),
                maxInFlight: try integer(map, "max_in_flight", 1...65536) ?? 8))
        }
        let cameras = planGroups.reduce(0) { $0 + $1.cameras }
        var plan = LoadgenPlan(
            groups: planGroups, durationSeconds: duration, drainMilliseconds: (try integer([:], "drain_ms", 0...3_600_000)).map(UInt64.init),
            connections: try integer([:], "connections", 1...4096) ?? min(cameras, 16),
            seed: UInt64(try integer([:], "seed", 0...Int.max) ?? 1),
            sampleMilliseconds: UInt64(try integer([:], "sample_ms", 50...60_000) ?? 1000))
        plan.latencyReportMilliseconds = UInt64(try integer([:], "latency_report_ms", 0...60_000) ?? 1000)
        plan.fidelity = fidelity
        if plan.latencyReportMilliseconds > 0 && plan.latencyReportMilliseconds < 100 {
            throw fail(top["latency_report_ms"]!, "latency_report_ms", "must be 0 (never) or at least 100")
        }
        try plan.validate()
        var thresholds: [Threshold] = []
        for text in top["fail_if"]?.values ?? [] {
            do { thresholds.append(try Threshold(parsing: text)) } catch { throw fail(top["fail_if"]!, "fail_if", error.description) }
        }
        let sink = try flag("sink", default: false)
        if sink && fidelity == .real { throw fail(top["fidelity"]!, "fidelity", "the sink answers emulated cameras only; fidelity real needs a broker") }
        let broker = top["broker"]?.value
        let topology = top["topology"].map { s in
            s.value.hasPrefix("/") || baseDirectory == nil || s.origin.hasPrefix("--") ? s.value : "\(baseDirectory!)/\(s.value)"
        }
        if sink, let t = top["topology"] { throw fail(t, "topology", "a topology starts a broker; the sink needs none") }
        if !sink && broker == nil && topology == nil {
            throw LoadgenError("--broker (scenario key broker) is required unless --sink or --topology is given")
        }
        var workers: EmulatedWorkerSettings?
        if let count = try integer([:], "emulate_workers", 0...256), count > 0 {
            guard !sink else { throw fail(top["emulate_workers"]!, "emulate_workers", "emulated workers need a broker, not the sink") }
            guard let backend = top["worker_backend"]?.value else {
                throw fail(top["emulate_workers"]!, "emulate_workers", "emulated workers need worker_backend (--worker-backend)")
            }
            let service = try positive([:], "worker_service_ms") ?? 86
            let extra = try number([:], "worker_batch_extra_ms")
            if let extra, extra < 0 { throw fail(top["worker_batch_extra_ms"]!, "worker_batch_extra_ms", "must not be negative") }
            let distributionText = top["worker_service"]?.value ?? "constant"
            guard let distribution = EmulatedWorkerSettings.Distribution(rawValue: distributionText) else {
                throw fail(top["worker_service"]!, "worker_service", "expected constant or exponential, found \(distributionText)")
            }
            var models: [String] = []
            for g in planGroups where !models.contains(g.modelName) { models.append(g.modelName) }
            workers = EmulatedWorkerSettings(
                count: count, backend: backend, models: models, serviceMilliseconds: service, batchExtraMilliseconds: extra,
                maxBatch: try integer([:], "worker_max_batch", 1...4096) ?? 1, credit: try integer([:], "worker_credit", 1...65536),
                distribution: distribution, seed: plan.seed &+ 99)
        }
        var options = LoadgenRunOptions(
            broker: broker, topology: topology, directives: top["directives"]?.value, stats: top["stats"]?.value, sink: sink,
            report: top["report"]?.value, html: top["html"]?.value, thresholds: thresholds, progress: try flag("progress", default: true),
            workers: workers)
        if let priority = try integer([:], "realtime_priority", RealtimeScheduling.priorities) {
            if fidelity == .real {
                throw fail(top["realtime_priority"]!, "realtime_priority", "is for the emulated event loop: real cameras run their models, and at a real-time priority they would starve everything else on the machine")
            }
            options.realtimePriority = priority
        }
        return (plan, options)
    }

    /// `split`, or shares such as `split=0.6,offload=0.4` (they must add up to 1).
    static func parseModes(_ setting: LoadgenSetting?) throws(LoadgenError) -> [(mode: CameraMode, share: Double)] {
        guard let setting else { return [(.split, 1)] }
        let text = setting.value.replacingOccurrences(of: " ", with: "")
        func fail(_ reason: String) -> LoadgenError {
            LoadgenError("\(setting.origin): \(reason)")
        }
        if let mode = CameraMode(rawValue: text) { return [(mode, 1)] }
        var out: [(mode: CameraMode, share: Double)] = []
        for part in text.split(separator: ",") {
            let kv = part.split(separator: "=")
            guard kv.count == 2, let mode = CameraMode(rawValue: String(kv[0])), let share = Double(kv[1]), share >= 0, share <= 1 else {
                throw fail("expected split, local, offload or shares like split=0.7,offload=0.3, found \(setting.value)")
            }
            out.append((mode, share))
        }
        let total = out.reduce(0) { $0 + $1.share }
        guard !out.isEmpty, abs(total - 1) < 1e-6 else { throw fail("mode shares must add up to 1, not \(total)") }
        return out
    }
}
