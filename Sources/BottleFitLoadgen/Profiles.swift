import Foundation

/// What a model costs and sends: the figures the emulated camera needs (profiles/models.yaml).
public struct ModelProfile: Sendable, Equatable {
    public var name: String
    /// Multiply-accumulates of the head (camera side of a split), in GMAC.
    public var headGMAC: Double
    /// Multiply-accumulates of the whole model, in GMAC.
    public var fullGMAC: Double
    /// The bottleneck's shape (C, H, W): a split FRAME carries their product in bytes.
    public var bottleneckShape: [Int]
    /// Side of the square input image (offload JPEGs are encoded at this size).
    public var inputSize: Int

    public init(name: String, headGMAC: Double, fullGMAC: Double, bottleneckShape: [Int], inputSize: Int) {
        self.name = name
        self.headGMAC = headGMAC
        self.fullGMAC = fullGMAC
        self.bottleneckShape = bottleneckShape
        self.inputSize = inputSize
    }

    public var bottleneckBytes: Int { bottleneckShape.reduce(1, *) }
}

/// An emulated camera board (profiles/devices/*.yaml): how fast it computes and what it draws.
/// Emulated, never measured here: every figure in the file names its source or says it is an assumption.
public struct DeviceProfile: Sendable, Equatable {
    public var name: String
    /// Effective throughput on convolutional networks, GFLOP/s (1 MAC = 2 FLOP): a model's time is
    /// `2 * GMAC / effective_gflops` seconds unless `models` gives a measured time.
    public var effectiveGFLOPS: Double
    /// Encoding one input image as JPEG (offload mode), ms.
    public var jpegEncodeMilliseconds: Double
    /// Board power while computing and while idle, W.
    public var activeWatts: Double
    public var idleWatts: Double
    /// Radio energy per byte sent, nJ.
    public var radioNanojoulesPerByte: Double
    /// Measured times per model name, overriding the GFLOP/s scaling: (head ms, full ms).
    public var modelTimes: [String: (head: Double?, full: Double?)]

    public init(
        name: String, effectiveGFLOPS: Double, jpegEncodeMilliseconds: Double, activeWatts: Double, idleWatts: Double,
        radioNanojoulesPerByte: Double, modelTimes: [String: (head: Double?, full: Double?)] = [:]
    ) {
        self.name = name
        self.effectiveGFLOPS = effectiveGFLOPS
        self.jpegEncodeMilliseconds = jpegEncodeMilliseconds
        self.activeWatts = activeWatts
        self.idleWatts = idleWatts
        self.radioNanojoulesPerByte = radioNanojoulesPerByte
        self.modelTimes = modelTimes
    }

    public static func == (a: DeviceProfile, b: DeviceProfile) -> Bool {
        a.name == b.name && a.effectiveGFLOPS == b.effectiveGFLOPS && a.jpegEncodeMilliseconds == b.jpegEncodeMilliseconds
            && a.activeWatts == b.activeWatts && a.idleWatts == b.idleWatts && a.radioNanojoulesPerByte == b.radioNanojoulesPerByte
            && a.modelTimes.keys.sorted() == b.modelTimes.keys.sorted()
    }

    /// A board that computes instantly and draws nothing: the sink benchmark's camera.
    public static let ideal = DeviceProfile(
        name: "ideal", effectiveGFLOPS: .infinity, jpegEncodeMilliseconds: 0, activeWatts: 0, idleWatts: 0, radioNanojoulesPerByte: 0)

    /// Head time of `model` here, ms.
    public func headMilliseconds(_ model: ModelProfile) -> Double {
        modelTimes[model.name]?.head ?? 2 * model.headGMAC / effectiveGFLOPS * 1000
    }

    /// Whole-model time of `model` here, ms.
    public func fullMilliseconds(_ model: ModelProfile) -> Double {
        modelTimes[model.name]?.full ?? 2 * model.fullGMAC / effectiveGFLOPS * 1000
    }
}

/// Reads device, uplink and model profiles from a profiles folder (`profiles/` of the repository by
/// default): `devices/NAME.yaml`, `uplinks/NAME.yaml`, `models.yaml`. A name containing `/` or
/// ending in `.yaml` is a path.
public struct ProfileLibrary: Sendable {
    public var directory: String

    public init(directory: String) { self.directory = directory }

    func path(_ kind: String, _ name: String) -> String {
        if name.contains("/") || name.hasSuffix(".yaml") { return name }
        return "\(directory)/\(kind)/\(name).yaml"
    }

    func available(_ kind: String) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "\(directory)/\(kind)")) ?? []
        return names.filter { $0.hasSuffix(".yaml") }.map { String($0.dropLast(5)) }.sorted()
    }

    private func open(_ kind: String, _ name: String, what: String) throws(LoadgenError) -> YAMLFields {
        if name == "ideal" { throw LoadgenError("ideal") }  // handled by callers
        let file = path(kind, name)
        guard FileManager.default.fileExists(atPath: file) else {
            let known = available(kind)
            throw LoadgenError("unknown \(what) \(name): no file \(file)" + (known.isEmpty ? "" : " (known: \(known.joined(separator: ", ")))"))
        }
        return try YAMLFields.load(path: file)
    }

    /// Every figure needs a source: the `sources` mapping must name one for each numeric key.
    private static func requireSources(_ f: YAMLFields, for keys: [String]) throws(LoadgenError) {
        guard let sources = try f.mapping("sources") else { throw f.error(nil, "missing required key sources (one citation per figure)") }
        for key in keys where f.has(key) {
            guard let s = try sources.string(key), !s.trimmingCharacters(in: .whitespaces).isEmpty else {
                throw sources.error(nil, "missing the source of \(key) (a citation, or `assumption: why`)")
            }
        }
    }

    public func device(_ name: String) throws(LoadgenError) -> DeviceProfile {
        if name == "ideal" { return .ideal }
        let f = try open("devices", name, what: "device profile")
        let numeric = ["effective_gflops", "jpeg_encode_ms", "active_w", "idle_w", "radio_nj_per_byte"]
        try f.rejectUnknownKeys(["name", "description", "sources", "models"] + numeric)
        var profile = DeviceProfile(
            name: try f.string("name") ?? name,
            effectiveGFLOPS: try f.requiredDouble("effective_gflops"),
            jpegEncodeMilliseconds: try f.requiredDouble("jpeg_encode_ms"),
            activeWatts: try f.requiredDouble("active_w"), idleWatts: try f.requiredDouble("idle_w"),
            radioNanojoulesPerByte: try f.requiredDouble("radio_nj_per_byte"))
        guard profile.effectiveGFLOPS >= 0.001 else { throw f.error("effective_gflops", "must be at least 0.001") }
        for key in numeric where try f.requiredDouble(key) < 0 { throw f.error(key, "must not be negative") }
        guard profile.activeWatts >= profile.idleWatts else { throw f.error("active_w", "must be at least idle_w") }
        try Self.requireSources(f, for: numeric)
        if let models = try f.mapping("models") {
            for model in models.keys {
                guard let m = try models.mapping(model) else { continue }
                try m.rejectUnknownKeys(["head_ms", "full_ms", "source"])
                let head = try m.double("head_ms"), full = try m.double("full_ms")
                for (k, v) in [("head_ms", head), ("full_ms", full)] where v.map({ $0 < 0 }) == true {
                    throw m.error(k, "must not be negative")
                }
                guard try m.string("source") != nil else { throw m.error(nil, "missing required key source") }
                profile.modelTimes[model] = (head, full)
            }
        }
        return profile
    }

    public func uplink(_ name: String) throws(LoadgenError) -> UplinkProfile {
        if name == "ideal" { return .ideal }
        let f = try open("uplinks", name, what: "uplink profile")
        let numeric = ["bandwidth_mbit", "bucket_bytes", "delay_ms", "jitter_ms", "loss"]
        try f.rejectUnknownKeys(["name", "description", "sources"] + numeric)
        let mbit = try f.requiredDouble("bandwidth_mbit")
        let profile = UplinkProfile(
            name: try f.string("name") ?? name, bitsPerSecond: mbit * 1e6,
            bucketBytes: try f.double("bucket_bytes") ?? 1500, delayMilliseconds: try f.requiredDouble("delay_ms"),
            jitterMilliseconds: try f.double("jitter_ms") ?? 0, loss: try f.double("loss") ?? 0)
        if let problem = profile.problem { throw f.error(nil, problem) }
        try Self.requireSources(f, for: numeric)
        return profile
    }

    public func model(_ name: String) throws(LoadgenError) -> ModelProfile {
        let file = "\(directory)/models.yaml"
        guard FileManager.default.fileExists(atPath: file) else { throw LoadgenError("no model table \(file)") }
        let root = try YAMLFields.load(path: file)
        guard let models = try root.mapping("models") else { throw root.error(nil, "missing required key models") }
        guard let m = try models.mapping(name) else {
            throw LoadgenError("unknown model \(name): not in \(file) (known: \(models.keys.joined(separator: ", ")))")
        }
        try m.rejectUnknownKeys(["head_gmac", "full_gmac", "bottleneck", "input_size", "source"])
        guard try m.string("source") != nil else { throw m.error(nil, "missing required key source") }
        let shapeText = try m.string("bottleneck") ?? ""
        let shape = shapeText.split(separator: "x").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard shape.count >= 1, shape.count == shapeText.split(separator: "x").count, shape.allSatisfy({ $0 > 0 }) else {
            throw m.error("bottleneck", "expected a shape like 12x29x29")
        }
        let profile = ModelProfile(
            name: name, headGMAC: try m.requiredDouble("head_gmac"), fullGMAC: try m.requiredDouble("full_gmac"),
            bottleneckShape: shape, inputSize: try m.int("input_size") ?? 224)
        guard profile.headGMAC >= 0, profile.fullGMAC > 0 else { throw m.error(nil, "GMAC figures must be positive") }
        guard (8...4096).contains(profile.inputSize) else { throw m.error("input_size", "must be 8...4096") }
        return profile
    }
}
