/// The identity of a frame inside the broker: which connection sent it and the camera's own `(c, s)`.
///
/// The routing id is part of the key because two connections may claim the same camera id (a
/// misconfigured fleet, or a camera reconnecting): their frames must not answer each other.
public struct FrameKey: Hashable, Sendable, CustomStringConvertible {
    /// The routing id the frontend ROUTER gave the camera's connection.
    public var cameraRoutingID: [UInt8]
    /// "c" of the FRAME.
    public var cameraID: String
    /// "s" of the FRAME.
    public var sequence: UInt64

    public init(cameraRoutingID: [UInt8], cameraID: String, sequence: UInt64) {
        self.cameraRoutingID = cameraRoutingID
        self.cameraID = cameraID
        self.sequence = sequence
    }

    /// The camera queue the frame waits in.
    var camera: CameraKey { CameraKey(routingID: cameraRoutingID, cameraID: cameraID) }

    public var description: String { "\(cameraID)#\(sequence)" }
}

/// One camera as the fair queue sees it: a connection and a camera id. A load generator that
/// multiplexes many simulated cameras over one connection still gets one queue per camera.
struct CameraKey: Hashable, Sendable {
    var routingID: [UInt8]
    var cameraID: String
}

/// A frame the broker holds, waiting in the queue or in flight at a worker.
struct PendingFrame: Sendable {
    var key: FrameKey
    /// "m": only workers serving it may take the frame.
    var model: String
    /// "dl", Unix ms.
    var deadline: UInt64
    /// The FRAME exactly as the camera sent it; forwarding these bytes keeps fields this
    /// broker does not know (a later minor version) intact.
    var bytes: [UInt8]
    /// When the frame (re)entered the queue, for queue-time figures.
    var enqueuedAt: Duration
    /// How many times the frame was sent to a worker; a lost worker's frame is requeued only after its first dispatch.
    var dispatches = 0
    /// The worker that held the frame before a requeue: its late answer is still accepted.
    var previousWorker: [UInt8]?
    /// When it was last sent to a worker: the worker's service time is measured from here.
    var dispatchedAt: Duration?

    init(key: FrameKey, model: String, deadline: UInt64, bytes: [UInt8], enqueuedAt: Duration) {
        self.key = key
        self.model = model
        self.deadline = deadline
        self.bytes = bytes
        self.enqueuedAt = enqueuedAt
    }

    /// Whether the deadline has passed: protocol.md says nobody computes a frame after `dl`.
    func isExpired(at now: BrokerTime) -> Bool { now.unixMilliseconds > deadline }
}

/// A first-in first-out list of frames that pops from the front without moving the rest.
struct FrameFIFO: Sendable {
    private var items: [PendingFrame] = []
    private var head = 0

    var isEmpty: Bool { head == items.count }
    var count: Int { items.count - head }
    var first: PendingFrame? { isEmpty ? nil : items[head] }
    var last: PendingFrame? { isEmpty ? nil : items[items.count - 1] }

    mutating func append(_ frame: PendingFrame) { items.append(frame) }

    /// Puts a frame back in front (a requeue: it is older than anything behind it).
    mutating func prepend(_ frame: PendingFrame) {
        if head > 0 {
            head -= 1
            items[head] = frame
        } else {
            items.insert(frame, at: 0)
        }
    }

    mutating func popFirst() -> PendingFrame? {
        guard !isEmpty else { return nil }
        let frame = items[head]
        head += 1
        // Reclaim the consumed prefix once it dominates, so memory follows the live length.
        if head == items.count {
            items.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 64 && head * 2 >= items.count {
            items.removeFirst(head)
            head = 0
        }
        return frame
    }

    mutating func popLast() -> PendingFrame? {
        guard !isEmpty else { return nil }
        let frame = items.removeLast()
        if head == items.count {
            items.removeAll(keepingCapacity: true)
            head = 0
        }
        return frame
    }

    /// Removes and returns the frames matching `predicate`, keeping the order of the rest.
    mutating func removeAll(where predicate: (PendingFrame) -> Bool) -> [PendingFrame] {
        // The periodic expiry sweep usually finds nothing: do not rebuild the list then.
        guard items[head...].contains(where: predicate) else { return [] }
        var removed: [PendingFrame] = []
        var kept: [PendingFrame] = []
        for frame in items[head...] {
            if predicate(frame) { removed.append(frame) } else { kept.append(frame) }
        }
        if !removed.isEmpty {
            items = kept
            head = 0
        }
        return removed
    }

    /// Every frame, front first.
    var frames: ArraySlice<PendingFrame> { items[head...] }
}
