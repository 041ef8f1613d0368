import BottleFitCore
import BottleFitDevice
import BottleFitImaging
import BottleFitProtocol
import Foundation

/// What the live progress line shows, once per sample interval.
public struct LoadgenProgress: Sendable {
    public var elapsedSeconds: Double
    public var offeredPerSecond: Double
    public var completedPerSecond: Double
    /// p99 of every completion so far, ms.
    public var p99SoFar: Double?
    /// Local + fallback share of the interval's completions.
    public var localFraction: Double?
    /// Frames dropped so far.
    public var dropped: Int
    /// ERROR answers from the edge so far.
    public var errors: Int
    public var draining: Bool
}

/// The load generator's loop: every emulated camera, one heap of timed events, one thread.
///
/// Each turn runs every event that is due (arrivals, ends of modelled compute, uplink deliveries,
/// reply timeouts, periodic ticks), then waits on the transport until the next event. An arrival's
/// latency counts from its scheduled time, and the next arrival is scheduled from that time, not
/// from when the loop got to it: open loop, free of coordinated omission.
final class LoadgenEngine {
    let plan: LoadgenPlan
    let transport: any LoadgenTransport
    let clock: any LoadgenClock
    var queue = EventQueue(capacity: 4096)
    let recorder: LoadgenRecorder
    private(set) var cameras: [EmulatedCamera] = []
    private var cameraIndex: [String: Int] = [:]
    private var camerasOfConnection: [[Int]]
    /// Last message from the broker on each connection (Unix µs); cameras' policies hear it lazily.
    private(set) var lastHeard: [UInt64]
    private var lastSent: [UInt64]
    /// Precomputed payloads per group.
    private var bottlenecks: [QuantizedTensor] = []
    private var jpegs: [[[UInt8]]] = []
    /// Labels of the offload payloads (Fashion-MNIST), per group; empty when unknown.
    private var labels: [[Int]] = []
    private let heartbeat: [UInt8]
    private var samples: [LoadgenReport.Sample] = []
    /// Issue 10's fairness measure over the time-series samples.
    private lazy var fairness = FairnessWindows(sampleSeconds: Double(plan.sampleMilliseconds) / 1000)
    private var statsSamples: [LoadgenReport.StatsSample] = []
    private var directiveSamples: [LoadgenReport.DirectiveSample] = []
    private var parked: [UInt64: (camera: Int, message: Message)] = [:]
    private var nextParkToken: UInt64 = 0
    private(set) var start: UInt64 = 0
    private(set) var end: UInt64 = 0
    private var lastSampleAt: UInt64 = 0
    var onProgress: ((LoadgenProgress) -> Void)?

    private enum Tick: UInt64 { case sample, heartbeat, report }

    init(plan: LoadgenPlan, transport: any LoadgenTransport, clock: any LoadgenClock) throws(LoadgenError) {
        try plan.validate()
        self.plan = plan
        self.transport = transport
        self.clock = clock
        recorder = LoadgenRecorder(groups: plan.groups.count)
        let connections = transport.connectionCount
        camerasOfConnection = Array(repeating: [], count: connections)
        lastHeard = Array(repeating: 0, count: connections)
        lastSent = Array(repeating: 0, count: connections)
        heartbeat = (try? HeartbeatMessage().encoded()) ?? []
        for (g, group) in plan.groups.enumerated() {
            bottlenecks.append(Self.bottleneck(group.model, seed: plan.seed &+ UInt64(g)))
            if group.modes.contains(where: { $0.mode == .offload }) {
                if group.fashionMNIST {
                    let (files, classes) = try Self.fashionMNIST(group)
                    jpegs.append(files)
                    labels.append(classes)
                } else {
                    jpegs.append(try Self.jpegs(group, seed: plan.seed &+ UInt64(g)))
                    labels.append([])
                }
            } else {
                jpegs.append([])
                labels.append([])
            }
        }
    }

    /// A quantized bottleneck of the model's shape: seeded noise (the edge's tail computes on any values).
    static func bottleneck(_ model: ModelProfile, seed: UInt64) -> QuantizedTensor {
        var random = SeededGenerator(seed: seed)
        let data = (0..<model.bottleneckBytes).map { _ in UInt8.random(in: 0...255, using: &random) }
        return QuantizedTensor(shape: model.bottleneckShape, data: data, parameters: QuantizationParameters(scale: 0.05, zeroPoint: 128))
    }

    /// The first `images` test images of Fashion-MNIST, JPEG-encoded once, and their labels.
    static func fashionMNIST(_ group: LoadgenPlan.Group) throws(LoadgenError) -> ([[UInt8]], [Int]) {
        do {
            var source = try FashionMNISTFrameSource(jpegQuality: group.jpegQuality)
            var files: [[UInt8]] = [], classes: [Int] = []
            while files.count < group.images, let frame = source.next(), let jpeg = frame.jpeg, let label = frame.label {
                files.append(jpeg)
                classes.append(label)
            }
            return (files, classes)
        } catch {
            throw LoadgenError("group \(group.name): source fashion-mnist: \(error)")
        }
    }

    /// The label sent with offload frame `sequence` of `camera`, if its payloads are labelled.
    func label(camera: EmulatedCamera, sequence: UInt64, route: FrameRoute) -> Int? {
        let list = labels[camera.group]
        guard route == .offload, !list.isEmpty else { return nil }
        return list[Int(sequence % UInt64(list.count))]
    }

    /// Distinct synthetic images at the model's input size, each JPEG-encoded once with the project's
    /// codec; or the JPEG files of `jpegDirectory` (sorted by name, at most `images`), read once and checked.
    static func jpegs(_ group: LoadgenPlan.Group, seed: UInt64) throws(LoadgenError) -> [[UInt8]] {
        if let dir = group.jpegDirectory {
            let names = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [])
                .filter { $0.lowercased().hasSuffix(".jpg") || $0.lowercased().hasSuffix(".jpeg") }.sorted().prefix(group.images)
            var files: [[UInt8]] = []
            for name in names {
                guard let data = FileManager.default.contents(atPath: "\(dir)/\(name)") else { continue }
                let bytes = [UInt8](data)
                guard (try? JPEGCodec.readHeader(bytes)) != nil, bytes.count <= 4 << 20 else { continue }
                files.append(bytes)
            }
            guard !files.isEmpty else { throw LoadgenError("group \(group.name): no readable JPEG file in \(dir)") }
            return files
        }
        let size = group.model.inputSize
        if group.textured {
            do {
                return try (0..<group.images).map { i throws(ImagingError) in
                    try JPEGCodec.encode(TexturedFrames.image(side: size, seed: seed &+ UInt64(i)), quality: group.jpegQuality)
                }
            } catch {
                throw LoadgenError("group \(group.name): cannot make JPEG payloads: \(error)")
            }
        }
        do {
            let source = try SyntheticFrameSource(width: size, height: size, seed: seed)
            return try (0..<group.images).map { i throws(ImagingError) in try JPEGCodec.encode(source.image(at: i), quality: group.jpegQuality) }
        } catch {
            throw LoadgenError("group \(group.name): cannot make JPEG payloads: \(error)")
        }
    }

    func payloadBytes(route: FrameRoute, camera: EmulatedCamera, sequence: UInt64) -> Int {
        if route == .offload, !jpegs[camera.group].isEmpty {
            let list = jpegs[camera.group]
            return list[Int(sequence % UInt64(list.count))].count
        }
        return bottlenecks[camera.group].data.count
    }

    func encodeFrame(camera: EmulatedCamera, sequence: UInt64, frame: EmulatedCamera.EdgeFrame) -> [UInt8]? {
        let payload: FramePayload
        if frame.route == .offload, !jpegs[camera.group].isEmpty {
            let list = jpegs[camera.group]
            payload = .jpeg(list[Int(sequence % UInt64(list.count))])
        } else {
            payload = .bottleneck(bottlenecks[camera.group])
        }
        let message = FrameMessage(
            cameraID: camera.id, sequence: sequence, model: plan.groups[camera.group].modelName, payload: payload,
            deadline: frame.giveUpAt, sentAt: frame.scheduled / 1000,
            label: label(camera: camera, sequence: sequence, route: frame.route))
        return try? message.encoded()
    }

    func noteSent(connection: Int, now: UInt64) { lastSent[connection] = now }

    // MARK: Running

    /// Runs the plan: arrivals until the duration ends, then a drain until every frame is settled
    /// or the drain time runs out (what is left is dropped as `shutdown`).
    func run(command: [String] = [], shouldStop: () -> Bool = { false }) -> LoadgenReport {
        let cpuBefore = processCPUMicroseconds()
        // A short lead so that making the cameras does not make the first arrivals late.
        start = clock.now() + 50_000
        end = start + UInt64(plan.durationSeconds * 1e6)
        makeCameras()
        lastSampleAt = start
        queue.push(at: start + plan.sampleMilliseconds * 1000, .tick, a: Tick.sample.rawValue)
        queue.push(at: start + 250_000, .tick, a: Tick.heartbeat.rawValue)
        if plan.latencyReportMilliseconds > 0 {
            queue.push(at: start + plan.latencyReportMilliseconds * 1000, .tick, a: Tick.report.rawValue)
        }
        let slo = plan.groups.map(\.sloMilliseconds).max() ?? 250
        let drainEnd = end + (plan.drainMilliseconds ?? slo + 1000) * 1000
        var stoppedEarly = false
        while true {
            var now = clock.now()
            var handled = 0
            while let event = queue.popDue(now: now) {
                dispatch(event, now: now)
                handled += 1
                if handled & 63 == 0 {
                    now = clock.now()
                    // A flood of due events must not starve the sockets.
                    if handled >= 4096 { break }
                }
            }
            if !stoppedEarly, shouldStop() {
                stoppedEarly = true
                end = min(end, now)
            }
            if now >= end {
                if outstanding() == 0 || now >= drainEnd || (stoppedEarly && now >= end + 1_000_000) { break }
            }
            let next = queue.nextTime ?? now + 100_000
            let wait = next > now ? min(next - now, 100_000) : 0
            transport.poll(timeoutMicroseconds: handled >= 4096 ? 0 : wait) { inbound in
                self.receive(inbound, now: self.clock.now())
            }
        }
        let finished = clock.now()
        for camera in cameras { camera.abandon(engine: self) }
        takeSample(now: finished, final: true)
        transport.close()
        return report(command: command, elapsed: finished - start, cpu: processCPUMicroseconds() - cpuBefore)
    }

    private func outstanding() -> Int {
        cameras.reduce(0) { $0 + $1.atEdge.count + $1.framesWaiting + $1.localRunning }
    }

    private func makeCameras() {
        var seed = SeededGenerator(seed: plan.seed)
        var index = 0
        for (g, group) in plan.groups.enumerated() {
            for i in 0..<group.cameras {
                let id = plan.groups.count == 1 ? "cam-\(String(format: "%04d", i))" : "\(group.name)-\(String(format: "%04d", i))"
                let connection = index % transport.connectionCount
                let schedule = ArrivalSchedule(shape: group.shape, process: group.arrivals, start: start, end: end, seed: seed.next())
                let camera = EmulatedCamera(
                    index: index, id: id, group: g, connection: connection, mode: group.mode(ofCamera: i),
                    sloMilliseconds: group.sloMilliseconds, maxInFlight: group.maxInFlight,
                    headMilliseconds: group.device.headMilliseconds(group.model), fullMilliseconds: group.device.fullMilliseconds(group.model),
                    encodeMilliseconds: group.device.jpegEncodeMilliseconds,
                    // The policy takes one rate: the shape's peak (exact for steady load).
                    framePeriodMilliseconds: 1000 / group.shape.peakRate,
                    schedule: schedule, uplink: UplinkEmulator(profile: group.uplink, seed: seed.next()), now: start)
                cameras.append(camera)
                cameraIndex[id] = index
                camerasOfConnection[connection].append(index)
                if let first = camera.schedule.first() { queue.push(at: first, .arrival, camera: index) }
                index += 1
            }
        }
    }

    private func dispatch(_ event: LoadgenEvent, now: UInt64) {
        switch event.kind {
        case .arrival:
            let camera = cameras[Int(event.camera)]
            recorder.recordArrivalLateness(now &- event.at)
            // The next arrival follows from this one's schedule, whatever the edge did.
            if let next = camera.schedule.next(after: event.at) { queue.push(at: next, .arrival, camera: camera.index) }
            camera.arrive(scheduled: event.at, now: now, engine: self)
        case .computeDone:
            cameras[Int(event.camera)].transmit(event.a, now: event.at, engine: self)
        case .deliver:
            cameras[Int(event.camera)].deliver(event.a, now: now, engine: self)
        case .giveUp:
            cameras[Int(event.camera)].giveUp(event.a, now: now, engine: self)
        case .localDone:
            // Completion at the modelled end of compute, not when the loop got to it.
            cameras[Int(event.camera)].finishLocal(
                scheduled: event.a, deadline: event.b >> 1, fellBack: event.b & 1 == 1, now: event.at, engine: self)
        case .replyArrives:
            if let (camera, message) = parked.removeValue(forKey: event.a) {
                cameras[camera].reply(message, now: event.at, engine: self)
            }
        case .tick:
            tick(Tick(rawValue: event.a) ?? .sample, now: now)
        }
    }

    private func tick(_ tick: Tick, now: UInt64) {
        switch tick {
        case .sample:
            takeSample(now: now, final: false)
            queue.push(at: now + plan.sampleMilliseconds * 1000, .tick, a: Tick.sample.rawValue)
        case .heartbeat:
            // Protocol section 10: a connection that sent nothing for an interval sends HEARTBEAT.
            for c in 0..<transport.connectionCount where now >= lastSent[c] + plan.heartbeatMilliseconds * 1000 {
                _ = transport.trySend(heartbeat, connection: c)
                lastSent[c] = now
            }
            queue.push(at: now + 250_000, .tick, a: Tick.heartbeat.rawValue)
        case .report:
            for camera in cameras {
                guard let report = camera.latencyReport(now: now),
                      let bytes = try? HeartbeatMessage(latencyReport: report).encoded() else { continue }
                if transport.trySend(bytes, connection: camera.connection) { lastSent[camera.connection] = now }
            }
            queue.push(at: now + plan.latencyReportMilliseconds * 1000, .tick, a: Tick.report.rawValue)
        }
    }

    // MARK: Receiving

    private func receive(_ inbound: LoadgenInbound, now: UInt64) {
        switch inbound {
        case .reply(let connection, let bytes):
            lastHeard[connection] = max(lastHeard[connection], now)
            guard let message = try? Message.decode(bytes) else {
                recorder.recordUndecodable()
                return
            }
            switch message {
            case .result(let r): route(message, cameraID: r.cameraID, connection: connection, now: now)
            case .error(let e): route(message, cameraID: e.cameraID, connection: connection, now: now)
            case .heartbeat: break
            case .disconnect:
                for i in camerasOfConnection[connection] { cameras[i].brokerLeft(now: now, engine: self) }
            default: recorder.recordIgnoredReply()
            }
        case .directive(let bytes):
            guard let directive = try? DirectiveMessage.decode(bytes) else {
                recorder.recordUndecodable()
                return
            }
            var obeyed = 0
            for camera in cameras where camera.apply(directive, now: now) { obeyed += 1 }
            let (fraction, ids): (Double?, Int?) = switch directive.target {
            case .fraction(let f): (f, nil)
            case .cameras(let list): (nil, list.count)
            }
            directiveSamples.append(LoadgenReport.DirectiveSample(
                t: seconds(now), sequence: directive.sequence, mode: directive.mode.rawValue, fraction: fraction, cameras: ids,
                edgeShare: directive.edgeShare, reason: directive.reason, obeyed: obeyed))
        case .stats(let bytes):
            guard let stats = try? StatsMessage.decode(bytes) else {
                recorder.recordUndecodable()
                return
            }
            statsSamples.append(LoadgenReport.StatsSample(
                t: seconds(now), queueDepth: stats.queueDepth, q50: stats.queueTimeP50, q95: stats.queueTimeP95, q99: stats.queueTimeP99,
                inFlight: stats.inFlight, arrivalsPerS: stats.arrivalRate, completionsPerS: stats.completionRate, dropsPerS: stats.dropRate,
                workers: stats.workers.count, utilisation: stats.utilisation))
        }
    }

    /// A RESULT or ERROR goes to its camera after the downlink delay of that camera's uplink.
    private func route(_ message: Message, cameraID: String?, connection: Int, now: UInt64) {
        let index: Int?
        if let cameraID { index = cameraIndex[cameraID] } else if camerasOfConnection[connection].count == 1 {
            index = camerasOfConnection[connection][0]
        } else {
            index = nil
        }
        guard let index else {
            recorder.recordIgnoredReply()
            return
        }
        let camera = cameras[index]
        let delay = camera.uplink.downlinkDelay()
        if delay == 0 {
            camera.reply(message, now: now, engine: self)
        } else {
            let token = nextParkToken
            nextParkToken += 1
            parked[token] = (index, message)
            queue.push(at: now + delay, .replyArrives, a: token)
        }
    }

    // MARK: Measuring

    /// Seconds since the run's start; negative for a STATS or DIRECTIVE read before the first
    /// arrival (an unsigned difference wrapped to 1.8e13 s there and broke the plots' time axis).
    private func seconds(_ t: UInt64) -> Double { (Double(t) - Double(start)) / 1e6 }

    private func takeSample(now: UInt64, final: Bool) {
        // The last interval (the drain's tail) is kept only if long enough to give meaningful rates.
        if final && now &- lastSampleAt < plan.sampleMilliseconds * 100 { return }
        let span = max(1e-3, Double(now &- lastSampleAt) / 1e6)
        lastSampleAt = now
        let i = recorder.takeInterval()
        func rate(_ n: Int) -> Double { Double(n) / span }
        func ms(_ h: LatencyHistogramHDR, _ q: Double) -> Double? { h.totalCount > 0 ? Double(h.valueAtPercentile(q)) / 1000 : nil }
        let edge = i.completed[.edge] ?? 0, local = i.completed[.local] ?? 0, fallback = i.completed[.fallback] ?? 0
        let completed = edge + local + fallback
        var states: [String: Int] = [:]
        var obeying = 0, edgeCameras = 0
        var shares = 0.0
        for camera in cameras where camera.mode != .local {
            states[camera.edgeStateName(now: now, engine: self), default: 0] += 1
            if camera.obeysLocalDirective(now: now) { obeying += 1 }
            shares += camera.edgeShare(now: now)
            edgeCameras += 1
        }
        let window = fairness.sample(
            t: seconds(now), offered: cameras.map(\.offeredFrames), edge: cameras.map(\.edgeFrames), eligible: cameras.map { $0.mode != .local })
        let sample = LoadgenReport.Sample(
            t: seconds(now), offeredPerS: rate(i.offered), completedPerS: rate(completed), edgePerS: rate(edge), localPerS: rate(local),
            fallbackPerS: rate(fallback), droppedPerS: rate(i.dropped), p50: ms(i.latency, 50), p90: ms(i.latency, 90),
            p99: ms(i.latency, 99), max: i.latency.totalCount > 0 ? Double(i.latency.max) / 1000 : nil, edgeP99: ms(i.edgeLatency, 99),
            localFraction: completed > 0 ? Double(local + fallback) / Double(completed) : nil,
            obeyingLocal: cameras.isEmpty ? 0 : Double(obeying) / Double(cameras.count),
            edgeShare: edgeCameras > 0 ? shares / Double(edgeCameras) : nil, edgeStates: states,
            schedulingP99: ms(i.schedulingError, 99), fairnessMin: window?.min, fairnessMax: window?.max)
        samples.append(sample)
        if final { return }
        onProgress?(LoadgenProgress(
            elapsedSeconds: sample.t, offeredPerSecond: sample.offeredPerS, completedPerSecond: sample.completedPerS,
            p99SoFar: recorder.overall.totalCount > 0 ? Double(recorder.overall.valueAtPercentile(99)) / 1000 : nil,
            localFraction: sample.localFraction, dropped: recorder.droppedTotal, errors: recorder.edgeErrorTotal,
            draining: now >= end && !final))
    }

    private func fairnessReport() -> LoadgenReport.Fairness {
        let f = fairness
        return LoadgenReport.Fairness(
            windowS: f.windowSeconds, warmupS: f.warmupSeconds, windows: f.windows, minRatio: f.minRatio, maxRatio: f.maxRatio,
            worstCamera: f.worst.map { cameras[$0.camera].id }, worstAtS: f.worst?.t,
            fair: f.windows > 0 ? (f.minRatio ?? 0) >= 0.5 && (f.maxRatio ?? .infinity) <= 2 : nil)
    }

    private func report(command: [String], elapsed: UInt64, cpu: UInt64) -> LoadgenReport {
        let r = recorder
        let completed = r.completedTotal
        let seconds = plan.durationSeconds
        var latency: [String: LoadgenReport.LatencySummary] = ["all": .init(r.overall)]
        var cdf: [String: [[Double]]] = ["all": cdfPoints(r.overall)]
        for path in LoadgenPath.allCases {
            if let h = r.byPath[path] {
                latency[path.rawValue] = .init(h)
                cdf[path.rawValue] = cdfPoints(h)
            }
        }
        var groupReports: [LoadgenReport.GroupReport] = []
        for (g, group) in plan.groups.enumerated() {
            let counters = r.groups[g]
            var latencyByPath: [String: LoadgenReport.LatencySummary] = ["all": .init(counters.all)]
            for (path, h) in counters.byPath { latencyByPath[path.rawValue] = .init(h) }
            var modes: [String: Int] = [:]
            var busy: UInt64 = 0, bytes = 0
            for camera in cameras where camera.group == g {
                modes[camera.mode.rawValue, default: 0] += 1
                busy += camera.busyMicroseconds
                bytes += camera.bytesSent
            }
            let busySeconds = Double(busy) / 1e6
            let runSeconds = Double(elapsed) / 1e6 * Double(group.cameras)
            let energy = LoadgenReport.Energy(
                computeJ: busySeconds * group.device.activeWatts, radioJ: Double(bytes) * group.device.radioNanojoulesPerByte * 1e-9,
                idleJ: max(0, runSeconds - busySeconds) * group.device.idleWatts, joulesPerFrame: nil)
            var withPerFrame = energy
            let done = counters.completedTotal
            if done > 0 { withPerFrame.joulesPerFrame = (energy.computeJ + energy.radioJ + energy.idleJ) / Double(done) }
            groupReports.append(LoadgenReport.GroupReport(
                name: group.name, cameras: group.cameras, modes: modes, model: group.modelName, device: group.device.name,
                uplink: group.uplink.name, offered: counters.offered, sent: counters.sent,
                completed: Dictionary(uniqueKeysWithValues: counters.completed.map { ($0.key.rawValue, $0.value) }),
                dropped: counters.dropped, late: counters.late, latencyMs: latencyByPath, energy: withPerFrame,
                labelledEdge: counters.labelledEdge,
                edgeAccuracy: counters.labelledEdge > 0 ? Double(counters.correctEdge) / Double(counters.labelledEdge) : nil,
                headMs: group.device.headMilliseconds(group.model), fullMs: group.device.fullMilliseconds(group.model),
                jpegEncodeMs: group.device.jpegEncodeMilliseconds, bottleneckBytes: group.model.bottleneckBytes,
                jpegBytes: jpegs[g].isEmpty ? 0 : jpegs[g].reduce(0) { $0 + $1.count } / jpegs[g].count))
        }
        var dropped: [String: Int] = [:]
        var edgeErrors: [String: Int] = [:]
        for g in r.groups {
            dropped.merge(g.dropped, uniquingKeysWith: +)
            edgeErrors.merge(g.edgeErrors, uniquingKeysWith: +)
        }
        let edge = r.completed(.edge)
        let totals = LoadgenReport.Totals(
            offered: r.offered, sent: r.groups.reduce(0) { $0 + $1.sent }, completedEdge: edge, completedLocal: r.completed(.local),
            completedFallback: r.completed(.fallback), dropped: dropped, droppedTotal: r.droppedTotal, unaccounted: r.unaccounted,
            lateCompletions: r.groups.reduce(0) { $0 + $1.late }, lateArrivals: r.lateArrivals,
            uplinkLost: r.groups.reduce(0) { $0 + $1.uplinkLost }, edgeErrors: edgeErrors, ignoredReplies: r.ignoredReplies,
            undecodable: r.undecodable, offeredPerS: Double(r.offered) / seconds, completedPerS: Double(completed) / seconds,
            edgeFraction: completed > 0 ? Double(edge) / Double(completed) : 0,
            localFraction: completed > 0 ? Double(completed - edge) / Double(completed) : 0,
            dropFraction: r.offered > 0 ? Double(r.droppedTotal) / Double(r.offered) : 0,
            stateChangesPerCameraPerMinute: cameras.isEmpty ? 0
                : Double(cameras.reduce(0) { $0 + $1.stateChanges }) / Double(cameras.count) / (seconds / 60),
            edgeUtilisation: {
                let u = statsSamples.compactMap(\.utilisation)
                return u.isEmpty ? nil : u.reduce(0, +) / Double(u.count)
            }())
        return LoadgenReport(
            fidelity: "emulated", startedAtMs: start / 1000, durationS: seconds, elapsedS: Double(elapsed) / 1e6, command: command,
            totals: totals, latencyMs: latency, schedulingErrorMs: .init(r.schedulingError), groups: groupReports, timeseries: samples,
            stats: statsSamples, directives: directiveSamples, cdf: cdf, thresholds: [], cpuS: Double(cpu) / 1e6,
            fairness: fairnessReport(), cameras: cameras.map { c in
                LoadgenReport.CameraReport(
                    id: c.id, group: plan.groups[c.group].name, mode: c.mode.rawValue, offered: c.offeredFrames, edge: c.edgeFrames,
                    edgeShare: c.offeredFrames > 0 ? Double(c.edgeFrames) / Double(c.offeredFrames) : nil)
            })
    }
}
