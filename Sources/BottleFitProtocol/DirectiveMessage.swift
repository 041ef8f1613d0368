/// DIRECTIVE, controller PUB: tells some cameras where to compute until `validUntil`.
public struct DirectiveMessage: WireMessage {
    public static let messageType = MessageType.directive

    /// Where the targeted cameras should run the model ("md").
    public enum Mode: String, Sendable, CaseIterable {
        /// Run the head, send the bottleneck to the edge (BottleFit).
        case split
        /// Run the whole model on the camera.
        case local
    }

    /// Which cameras a directive applies to: named ones ("tc") or a stable fraction of the fleet ("tf").
    public enum Target: Sendable, Equatable {
        /// These camera ids.
        case cameras([String])
        /// Each camera whose `fleetPosition` is below this fraction, in [0, 1].
        case fraction(Double)

        /// Whether the camera `id` is targeted.
        public func includes(cameraID id: String) -> Bool {
            switch self {
            case .cameras(let ids): ids.contains(id)
            case .fraction(let f): DirectiveMessage.fleetPosition(of: id) < f
            }
        }
    }

    /// "s": increases with every directive from a controller; a camera ignores one older than the last it obeyed.
    public var sequence: UInt64
    /// "tc" or "tf".
    public var target: Target
    /// "md".
    public var mode: Mode
    /// "r": why, for logs.
    public var reason: String
    /// "vu": the directive lapses at this Unix millisecond; the camera then returns to its own choice.
    public var validUntil: UInt64
    /// "es", with mode `split` only: the largest share of its frames a targeted camera sends to the
    /// edge, in [0, 1]; the rest it computes locally (a camera without the whole model ignores it).
    /// `nil`: no cap.
    public var edgeShare: Double?
    /// "ef", with mode `split` only: the smallest share of its frames a targeted camera sends to
    /// the edge, in [0, 1] and not above `es`, whatever its own congestion control would send
    /// (the controller's way to fill an edge that has room). `nil`: no floor.
    public var edgeFloor: Double?

    public init(
        sequence: UInt64, target: Target, mode: Mode, reason: String, validUntil: UInt64, edgeShare: Double? = nil, edgeFloor: Double? = nil
    ) {
        self.sequence = sequence
        self.target = target
        self.mode = mode
        self.reason = reason
        self.validUntil = validUntil
        self.edgeShare = edgeShare
        self.edgeFloor = edgeFloor
    }

    /// A camera's stable place in [0, 1) for fraction targets. The 64-bit FNV-1a hash of the id's
    /// UTF-8 bytes is mixed with MurmurHash3's 64-bit finaliser (FNV-1a alone leaves the top bits
    /// nearly equal for ids differing only in their last characters), and its top 53 bits are
    /// divided by 2^53. Raising the fraction only ever adds cameras.
    public static func fleetPosition(of cameraID: String) -> Double {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in cameraID.utf8 {
            h ^= UInt64(byte)
            h = h &* 0x0000_0100_0000_01b3
        }
        h ^= h >> 33
        h = h &* 0xff51_afd7_ed55_8ccd
        h ^= h >> 33
        h = h &* 0xc4ce_b9fe_1a85_ec53
        h ^= h >> 33
        return Double(h >> 11) * 0x1p-53
    }

    public var message: Message { .directive(self) }
    public init?(_ message: Message) {
        guard case .directive(let m) = message else { return nil }
        self = m
    }
}

extension DirectiveMessage: MessageBody {
    var fieldCount: Int { 5 + (edgeShare == nil ? 0 : 1) + (edgeFloor == nil ? 0 : 1) }

    func write(to w: MessagePackWriter) throws(ProtocolError) {
        try w.key("s"); try w.unsigned(sequence)
        switch target {
        case .cameras(let ids):
            try w.key("tc"); try w.array(ids.count)
            for id in ids { try w.string(id) }
        case .fraction(let f):
            try w.key("tf"); try w.float64(f)
        }
        try w.key("md"); try w.string(mode.rawValue)
        try w.key("r"); try w.string(reason)
        try w.key("vu"); try w.unsigned(validUntil)
        if let edgeShare { try w.key("es"); try w.float64(edgeShare) }
        if let edgeFloor { try w.key("ef"); try w.float64(edgeFloor) }
    }

    init(fields f: FieldMap, limits: ProtocolLimits) throws(ProtocolError) {
        sequence = try FieldValue.unsigned(f.required("s"), "s")
        switch (f.optional("tc"), f.optional("tf")) {
        case (let cameras?, nil):
            target = .cameras(try FieldValue.list(cameras, "tc", maxCount: limits.maxCameraIDs) { (o, name) throws(ProtocolError) in
                try FieldValue.identifier(o, name, limits: limits)
            })
        case (nil, let fraction?):
            target = .fraction(try FieldValue.double(fraction, "tf"))
        case (nil, nil):
            throw .missingField("tc|tf")
        case (_?, _?):
            throw .invalidValue(field: "tc|tf", reason: "give either camera ids or a fraction, not both")
        }
        let mode = try FieldValue.string(f.required("md"), "md", maxBytes: limits.maxIdentifierBytes)
        guard let m = Mode(rawValue: mode) else {
            throw .invalidValue(field: "md", reason: "unknown mode \"\(mode)\" (expected split or local)")
        }
        self.mode = m
        reason = try FieldValue.string(f.required("r"), "r", maxBytes: limits.maxTextBytes)
        validUntil = try FieldValue.unsigned(f.required("vu"), "vu")
        edgeShare = try f.optional("es").map { (o) throws(ProtocolError) in try FieldValue.double(o, "es") }
        edgeFloor = try f.optional("ef").map { (o) throws(ProtocolError) in try FieldValue.double(o, "ef") }
        try validate(limits: limits)
    }

    func validate(limits: ProtocolLimits) throws(ProtocolError) {
        switch target {
        case .cameras(let ids):
            guard ids.count <= limits.maxCameraIDs else { throw .tooLarge(field: "tc", limit: limits.maxCameraIDs) }
            for id in ids { try checkIdentifier(id, "tc", limits) }
        case .fraction(let f):
            guard f.isFinite, (0...1).contains(f) else { throw .invalidValue(field: "tf", reason: "fraction \(f) outside [0, 1]") }
        }
        try checkText(reason, "r", limits)
        if let share = edgeShare {
            guard share.isFinite, (0...1).contains(share) else { throw .invalidValue(field: "es", reason: "edge share \(share) outside [0, 1]") }
            guard mode == .split else { throw .invalidValue(field: "es", reason: "an edge share goes with mode split only") }
        }
        if let floor = edgeFloor {
            guard floor.isFinite, (0...1).contains(floor) else { throw .invalidValue(field: "ef", reason: "edge floor \(floor) outside [0, 1]") }
            guard mode == .split else { throw .invalidValue(field: "ef", reason: "an edge floor goes with mode split only") }
            if let share = edgeShare, floor > share {
                throw .invalidValue(field: "ef", reason: "edge floor \(floor) above the edge share \(share)")
            }
        }
    }
}
