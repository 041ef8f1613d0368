import BottleFitDevice

/// A run, resolved and checked: every profile loaded, every number in range. What the engine runs.
public struct LoadgenPlan: Sendable {
    /// Cameras that share a configuration.
    public struct Group: Sendable {
        public var name: String
        public var cameras: Int
        public var shape: LoadShape
        public var arrivals: ArrivalProcess
        /// Modes and the share of the group's cameras in each (shares add up to 1).
        public var modes: [(mode: CameraMode, share: Double)]
        /// "m" of every FRAME.
        public var modelName: String
        public var model: ModelProfile
        public var device: DeviceProfile
        public var uplink: UplinkProfile
        /// Offload payloads: distinct synthetic images encoded once each at this quality.
        public var jpegQuality: Int
        public var images: Int
        /// Offload payloads from a folder of JPEG files (read once) instead of synthetic images.
        public var jpegDirectory: String?
        /// Offload payloads from Fashion-MNIST's test split, sent with their labels ("lb").
        public var fashionMNIST: Bool
        /// Fidelity real: the head and whole-model ONNX files the real cameras run.
        public var headModel: String?
        public var fullModel: String?
        /// Offload payloads from photo-like 1/f-noise frames (`TexturedFrames`) instead of flat synthetic ones.
        public var textured: Bool
        public var sloMilliseconds: UInt64
        public var maxInFlight: Int

        public init(
            name: String, cameras: Int, shape: LoadShape, arrivals: ArrivalProcess = .constant,
            modes: [(mode: CameraMode, share: Double)] = [(.split, 1)], modelName: String, model: ModelProfile,
            device: DeviceProfile, uplink: UplinkProfile, jpegQuality: Int = 90, images: Int = 8, jpegDirectory: String? = nil,
            fashionMNIST: Bool = false, textured: Bool = false, headModel: String? = nil, fullModel: String? = nil, sloMilliseconds: UInt64 = 250, maxInFlight: Int = 8
        ) {
            self.jpegDirectory = jpegDirectory
            self.fashionMNIST = fashionMNIST
            self.textured = textured
            self.headModel = headModel
            self.fullModel = fullModel
            self.name = name
            self.cameras = cameras
            self.shape = shape
            self.arrivals = arrivals
            self.modes = modes
            self.modelName = modelName
            self.model = model
            self.device = device
            self.uplink = uplink
            self.jpegQuality = jpegQuality
            self.images = images
            self.sloMilliseconds = sloMilliseconds
            self.maxInFlight = maxInFlight
        }

        /// The mode of camera `i` of `cameras`: the first `share × cameras` take the first mode, and so on.
        func mode(ofCamera i: Int) -> CameraMode {
            var bound = 0.0
            for (mode, share) in modes {
                bound += share * Double(cameras)
                if Double(i) < bound.rounded() { return mode }
            }
            return modes.last?.mode ?? .split
        }
    }

    public var groups: [Group]
    /// `emulated` (cameras modelled from profiles, one event loop) or `real` (`RealFleet`: real cameras running their models).
    public var fidelity: Fidelity = .emulated
    public var durationSeconds: Double
    /// How long to wait for frames still at the edge after the last arrival; default SLO + 1 s.
    public var drainMilliseconds: UInt64?
    /// DEALER connections to the broker; cameras are spread round robin.
    public var connections: Int
    public var seed: UInt64
    /// Time-series resolution.
    public var sampleMilliseconds: UInt64
    public var heartbeatMilliseconds: UInt64 = 1000
    /// Camera latency reports (HEARTBEAT `lr`); 0 sends none.
    public var latencyReportMilliseconds: UInt64 = 1000

    public init(
        groups: [Group], durationSeconds: Double, drainMilliseconds: UInt64? = nil, connections: Int = 1, seed: UInt64 = 1,
        sampleMilliseconds: UInt64 = 1000
    ) {
        self.groups = groups
        self.durationSeconds = durationSeconds
        self.drainMilliseconds = drainMilliseconds
        self.connections = connections
        self.seed = seed
        self.sampleMilliseconds = sampleMilliseconds
    }

    /// How close the cameras are to real ones (docs/loadgen.md, "Fidelity"); every report names it.
    public enum Fidelity: String, Sendable {
        case emulated, real
    }

    public var cameraCount: Int { groups.reduce(0) { $0 + $1.cameras } }

    /// Refuses settings that cannot run, before any socket is opened or frame sent.
    public func validate() throws(LoadgenError) {
        guard !groups.isEmpty else { throw LoadgenError("no camera group") }
        guard durationSeconds > 0, durationSeconds.isFinite else { throw LoadgenError("duration must be positive") }
        guard connections >= 1 else { throw LoadgenError("connections must be at least 1") }
        guard sampleMilliseconds >= 50 else { throw LoadgenError("sample_ms must be at least 50") }
        for g in groups {
            let at = "group \(g.name)"
            guard g.cameras >= 1 else { throw LoadgenError("\(at): cameras must be at least 1") }
            guard g.shape.peakRate > 0 else { throw LoadgenError("\(at): the rate is 0 for the whole run: no frame would be offered") }
            guard g.sloMilliseconds > 0 else { throw LoadgenError("\(at): slo_ms must be positive") }
            guard (1...65536).contains(g.maxInFlight) else { throw LoadgenError("\(at): max_in_flight must be 1...65536") }
            guard (1...100).contains(g.jpegQuality) else { throw LoadgenError("\(at): jpeg_quality must be 1...100") }
            guard (1...1024).contains(g.images) else { throw LoadgenError("\(at): images must be 1...1024") }
            guard !g.modes.isEmpty, abs(g.modes.reduce(0) { $0 + $1.share } - 1) < 1e-6 else {
                throw LoadgenError("\(at): mode shares must add up to 1")
            }
            guard !g.modelName.isEmpty, g.modelName.utf8.count <= 128 else { throw LoadgenError("\(at): model must be 1...128 bytes") }
            if let problem = g.uplink.problem { throw LoadgenError("\(at): uplink \(g.uplink.name): \(problem)") }
        }
        let names = groups.map(\.name)
        if Set(names).count != names.count { throw LoadgenError("group names must be unique") }
    }
}
