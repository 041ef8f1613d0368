import BottleFitProtocol
import Foundation

/// The last few minutes of what the controller saw, one sample per second of STATS time, for the
/// dashboard's charts (`/api/state`, docs/metrics.md). A value: `record` takes a STATS and the
/// controller's figures after it; no clock, no I/O.
public struct DashboardHistory: Sendable, Equatable {
    /// One second of the fleet, from the last STATS of that second.
    public struct Sample: Sendable, Equatable {
        /// STATS `ts`, Unix ms.
        public var timestamp: UInt64
        public var queueDepth: Int
        public var queueTimeP95: Double
        /// Completions per second (STATS `co`).
        public var throughput: Double
        /// The cameras' edge latency p99, ms (STATS `l99`); nil when no camera completed an edge frame.
        public var edgeP99: Double?
        /// The share of the cameras' frames computed locally (STATS `lo` over `ln + lm + lo`); nil
        /// without camera reports.
        public var localShare: Double?
        /// The share the controller sends local (DIRECTIVE `es` = 1 − it).
        public var localFraction: Double
    }

    /// Samples kept: one per second.
    public let capacity: Int
    public private(set) var samples: [Sample] = []

    public init(capacity: Int = 300) { self.capacity = max(1, capacity) }

    /// Adds `stats` (replacing the sample of the same second: the latest STATS of a second wins).
    public mutating func record(_ stats: StatsMessage, localFraction: Double) {
        let sample = Sample(
            timestamp: stats.timestamp, queueDepth: stats.queueDepth, queueTimeP95: stats.queueTimeP95,
            throughput: stats.completionRate, edgeP99: stats.cameraLatency?.percentiles?.p99,
            localShare: stats.cameraLatency.flatMap { $0.completed + $0.missed + $0.local > 0 ? $0.localShare : nil },
            localFraction: localFraction)
        if let last = samples.last, last.timestamp / 1000 == stats.timestamp / 1000 {
            samples[samples.count - 1] = sample
        } else if let last = samples.last, stats.timestamp < last.timestamp {
            return  // a STATS older than one already charted (a restarted broker's clock step back is rare; skip it)
        } else {
            samples.append(sample)
            if samples.count > capacity { samples.removeFirst(samples.count - capacity) }
        }
    }
}

/// What `GET /api/state` answers: the controller's latest view of the fleet and the history
/// behind the dashboard's charts. Field names and units are documented in docs/metrics.md.
public struct DashboardState: Sendable, Encodable {
    /// The shape's version: a field is only ever added.
    public var version = 1
    public var role = "controller"
    /// When the state was taken, Unix ms (the controller's clock).
    public var nowMilliseconds: UInt64
    /// The STATS endpoint the controller subscribes to.
    public var statsEndpoint: String
    /// STATS received so far; 0 means the broker has not been heard yet.
    public var statsReceived: Int
    /// How old the last STATS is by the controller's clock, ms; nil before the first.
    public var statsAgeMilliseconds: UInt64?
    public var condition: String
    public var localFraction: Double
    public var edgeFloor: Double
    public var lastDecision: String?
    public var latest: Latest?
    public var workers: [Worker]
    public var camerasByMode: Modes?
    public var history: History

    public struct Latest: Sendable, Encodable {
        var timestamp: UInt64
        var queueDepth: Int
        var queueTimeP50: Double, queueTimeP95: Double, queueTimeP99: Double
        var inFlight: Int
        var arrivalRate: Double, throughput: Double, dropRate: Double
        var utilisation: Double?
        var camerasReporting: Int?
        var edgeP50: Double?, edgeP95: Double?, edgeP99: Double?
        var localShare: Double?
        var missRatio: Double?
    }

    public struct Worker: Sendable, Encodable {
        var id: String
        var credit: Int
        var inFlight: Int
        var batchMean: Double?
        var batchMax: Int?
    }

    public struct Modes: Sendable, Encodable {
        var split: Int, local: Int, offload: Int
    }

    /// Column by column, oldest first; `null` where a sample had no value.
    public struct History: Sendable, Encodable {
        var t: [UInt64] = []
        var queueDepth: [Int] = []
        var queueTimeP95: [Double] = []
        var throughput: [Double] = []
        var edgeP99: [Double?] = []
        var localShare: [Double?] = []
        var localFraction: [Double] = []
    }

    public init(
        now: UInt64, statsEndpoint: String, statsReceived: Int, statsReceivedAt: UInt64?, condition: String,
        localFraction: Double, edgeFloor: Double, lastDecision: String?, stats: StatsMessage?, history: DashboardHistory
    ) {
        nowMilliseconds = now
        self.statsEndpoint = statsEndpoint
        self.statsReceived = statsReceived
        statsAgeMilliseconds = statsReceivedAt.map { now > $0 ? now - $0 : 0 }
        self.condition = condition
        self.localFraction = localFraction
        self.edgeFloor = edgeFloor
        self.lastDecision = lastDecision
        latest = stats.map { s in
            let c = s.cameraLatency
            return Latest(
                timestamp: s.timestamp, queueDepth: s.queueDepth,
                queueTimeP50: s.queueTimeP50, queueTimeP95: s.queueTimeP95, queueTimeP99: s.queueTimeP99,
                inFlight: s.inFlight, arrivalRate: s.arrivalRate, throughput: s.completionRate, dropRate: s.dropRate,
                utilisation: s.utilisation, camerasReporting: c?.cameras,
                edgeP50: c?.percentiles?.p50, edgeP95: c?.percentiles?.p95, edgeP99: c?.percentiles?.p99,
                localShare: c.flatMap { $0.completed + $0.missed + $0.local > 0 ? $0.localShare : nil },
                missRatio: c.flatMap { $0.completed + $0.missed > 0 ? $0.missRatio : nil })
        }
        workers = (stats?.workers ?? []).map {
            Worker(id: $0.id, credit: $0.credit, inFlight: $0.inFlight, batchMean: $0.batches?.mean, batchMax: $0.batches?.max)
        }
        camerasByMode = stats?.cameraModes.map { Modes(split: $0.split, local: $0.local, offload: $0.offload) }
        var h = History()
        for sample in history.samples {
            h.t.append(sample.timestamp)
            h.queueDepth.append(sample.queueDepth)
            h.queueTimeP95.append(sample.queueTimeP95)
            h.throughput.append(sample.throughput)
            h.edgeP99.append(sample.edgeP99)
            h.localShare.append(sample.localShare)
            h.localFraction.append(sample.localFraction)
        }
        self.history = h
    }

    /// The JSON of `/api/state`: snake_case keys, every key present (`null` when unknown), so a
    /// reader never has to tell a missing key from a missing value.
    public func json() -> String {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        guard let data = try? encoder.encode(self) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }

    // Written out because synthesized encoding leaves nil optionals out; `encode` of an Optional writes null.
    enum CodingKeys: String, CodingKey {
        case version, role, nowMilliseconds, statsEndpoint, statsReceived, statsAgeMilliseconds, condition, localFraction
        case edgeFloor, lastDecision, latest, workers, camerasByMode, history
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(version, forKey: .version)
        try c.encode(role, forKey: .role)
        try c.encode(nowMilliseconds, forKey: .nowMilliseconds)
        try c.encode(statsEndpoint, forKey: .statsEndpoint)
        try c.encode(statsReceived, forKey: .statsReceived)
        try c.encode(statsAgeMilliseconds, forKey: .statsAgeMilliseconds)
        try c.encode(condition, forKey: .condition)
        try c.encode(localFraction, forKey: .localFraction)
        try c.encode(edgeFloor, forKey: .edgeFloor)
        try c.encode(lastDecision, forKey: .lastDecision)
        try c.encode(latest, forKey: .latest)
        try c.encode(workers, forKey: .workers)
        try c.encode(camerasByMode, forKey: .camerasByMode)
        try c.encode(history, forKey: .history)
    }
}

extension DashboardState.Latest {
    enum CodingKeys: String, CodingKey {
        case timestamp, queueDepth, queueTimeP50, queueTimeP95, queueTimeP99, inFlight, arrivalRate, throughput, dropRate
        case utilisation, camerasReporting, edgeP50, edgeP95, edgeP99, localShare, missRatio
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(timestamp, forKey: .timestamp)
        try c.encode(queueDepth, forKey: .queueDepth)
        try c.encode(queueTimeP50, forKey: .queueTimeP50)
        try c.encode(queueTimeP95, forKey: .queueTimeP95)
        try c.encode(queueTimeP99, forKey: .queueTimeP99)
        try c.encode(inFlight, forKey: .inFlight)
        try c.encode(arrivalRate, forKey: .arrivalRate)
        try c.encode(throughput, forKey: .throughput)
        try c.encode(dropRate, forKey: .dropRate)
        try c.encode(utilisation, forKey: .utilisation)
        try c.encode(camerasReporting, forKey: .camerasReporting)
        try c.encode(edgeP50, forKey: .edgeP50)
        try c.encode(edgeP95, forKey: .edgeP95)
        try c.encode(edgeP99, forKey: .edgeP99)
        try c.encode(localShare, forKey: .localShare)
        try c.encode(missRatio, forKey: .missRatio)
    }
}

extension DashboardState.Worker {
    enum CodingKeys: String, CodingKey { case id, credit, inFlight, batchMean, batchMax }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(credit, forKey: .credit)
        try c.encode(inFlight, forKey: .inFlight)
        try c.encode(batchMean, forKey: .batchMean)
        try c.encode(batchMax, forKey: .batchMax)
    }
}
