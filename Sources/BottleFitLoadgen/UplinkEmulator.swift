import BottleFitCore

/// A camera's network link as the load generator emulates it (docs/loadgen.md, "Uplinks").
public struct UplinkProfile: Sendable, Equatable {
    public var name: String
    /// Bandwidth of the uplink, bits per second; `nil` for unlimited.
    public var bitsPerSecond: Double?
    /// Token bucket depth, bytes: what may leave at once before the rate applies.
    public var bucketBytes: Double
    /// One-way propagation delay, ms (applied both ways: frame up, reply down).
    public var delayMilliseconds: Double
    /// Uniform jitter added to each one-way delay, 0...jitter ms.
    public var jitterMilliseconds: Double
    /// Probability that a frame is lost on the uplink (its reply never comes).
    public var loss: Double

    public init(
        name: String, bitsPerSecond: Double?, bucketBytes: Double = 1500, delayMilliseconds: Double = 0,
        jitterMilliseconds: Double = 0, loss: Double = 0
    ) {
        self.name = name
        self.bitsPerSecond = bitsPerSecond
        self.bucketBytes = bucketBytes
        self.delayMilliseconds = delayMilliseconds
        self.jitterMilliseconds = jitterMilliseconds
        self.loss = loss
    }

    /// No limit, no delay: what the sink benchmark uses.
    public static let ideal = UplinkProfile(name: "ideal", bitsPerSecond: nil)

    /// Why the profile cannot be emulated, or nil.
    public var problem: String? {
        if let b = bitsPerSecond, !(b >= 1000 && b.isFinite) { return "bandwidth must be at least 0.001 Mbit/s" }
        if !(bucketBytes >= 0 && bucketBytes.isFinite) { return "bucket_bytes must not be negative" }
        if !(delayMilliseconds >= 0 && delayMilliseconds.isFinite) { return "delay_ms must not be negative" }
        if !(jitterMilliseconds >= 0 && jitterMilliseconds.isFinite) { return "jitter_ms must not be negative" }
        if !(loss >= 0 && loss < 1) { return "loss must be in [0, 1)" }
        return nil
    }
}

/// One camera's uplink: a token bucket that serialises frames at the link rate (a 10 KB bottleneck
/// and a 30 KB JPEG differ by their transmission time), followed by a delay line (propagation
/// delay plus jitter, without reordering) and random loss. A value driven by the loop's time.
struct UplinkEmulator {
    let profile: UplinkProfile
    private let bytesPerMicrosecond: Double?
    private var tokens: Double
    private var tokensAt: UInt64 = 0
    /// When the link finishes sending what it already holds.
    private var busyUntil: UInt64 = 0
    /// The latest arrival handed out: later frames never overtake it.
    private var lastArrival: UInt64 = 0
    private var random: SeededGenerator

    init(profile: UplinkProfile, seed: UInt64) {
        self.profile = profile
        bytesPerMicrosecond = profile.bitsPerSecond.map { $0 / 8 / 1e6 }
        tokens = profile.bucketBytes
        random = SeededGenerator(seed: seed)
    }

    /// Sends `bytes` handed to the link at `now` (µs). Returns when they reach the far end, or
    /// nil when the frame is lost; `departed` is when its last byte left the camera.
    mutating func transmit(bytes: Int, at now: UInt64) -> (arrival: UInt64?, departed: UInt64) {
        var departed = max(now, busyUntil)
        if let rate = bytesPerMicrosecond {
            // Refill since the last update, up to the bucket depth.
            if departed > tokensAt {
                tokens = min(profile.bucketBytes, tokens + Double(departed - tokensAt) * rate)
                tokensAt = departed
            }
            let size = Double(bytes)
            if tokens >= size {
                tokens -= size
            } else {
                let wait = (size - tokens) / rate
                tokens = 0
                departed += UInt64(wait.rounded(.up))
                tokensAt = departed
            }
        }
        busyUntil = departed
        if profile.loss > 0, Double.random(in: 0..<1, using: &random) < profile.loss { return (nil, departed) }
        var arrival = departed + oneWayDelay()
        arrival = max(arrival, lastArrival)
        lastArrival = arrival
        return (arrival, departed)
    }

    /// The delay of a reply on the way back (µs): propagation plus jitter; replies are small, so no serialisation.
    mutating func downlinkDelay() -> UInt64 { oneWayDelay() }

    private mutating func oneWayDelay() -> UInt64 {
        var ms = profile.delayMilliseconds
        if profile.jitterMilliseconds > 0 { ms += Double.random(in: 0...profile.jitterMilliseconds, using: &random) }
        return UInt64((ms * 1000).rounded())
    }
}
