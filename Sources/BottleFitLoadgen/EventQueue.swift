/// Something the load generator's loop must do at a time (Unix µs). Plain data, so the heap moves
/// no references; `a` and `b` carry the event's arguments (see `Kind`).
struct LoadgenEvent {
    enum Kind: UInt8 {
        /// A frame of camera `camera` is due (scheduled time = `at`).
        case arrival
        /// Edge frame `a` of `camera` has crossed the emulated uplink: hand it to the broker.
        case deliver
        /// Edge frame `a` of `camera` is due for a reply; if it is still waiting, give up on it.
        case giveUp
        /// A local computation of `camera` ends: `a` = its scheduled time, `b` = deadline ms | fallback flag.
        case localDone
        /// A reply parked in the downlink delay line arrives: `a` = its token.
        case replyArrives
        /// The split head (or JPEG encode) of edge frame `a` of `camera` ends; the uplink starts.
        case computeDone
        /// Periodic work of the loop (samples, heartbeats, reports): `a` = which.
        case tick
    }

    var at: UInt64
    /// Insertion order: events at the same time run in the order they were scheduled.
    var order: UInt64
    var kind: Kind
    var camera: Int32
    var a: UInt64
    var b: UInt64
}

/// The loop's timer: a binary min-heap over (time, insertion order). O(log n) push and pop; one
/// heap for every camera, as a timer wheel would be, but exact to the microsecond.
struct EventQueue {
    private var heap: [LoadgenEvent] = []
    private var nextOrder: UInt64 = 0

    init(capacity: Int = 1024) { heap.reserveCapacity(capacity) }

    var count: Int { heap.count }
    var isEmpty: Bool { heap.isEmpty }
    /// The time of the next event.
    var nextTime: UInt64? { heap.first?.at }

    mutating func push(at: UInt64, _ kind: LoadgenEvent.Kind, camera: Int = 0, a: UInt64 = 0, b: UInt64 = 0) {
        heap.append(LoadgenEvent(at: at, order: nextOrder, kind: kind, camera: Int32(truncatingIfNeeded: camera), a: a, b: b))
        nextOrder &+= 1
        siftUp(heap.count - 1)
    }

    /// Removes and returns the earliest event if it is due at `now`.
    mutating func popDue(now: UInt64) -> LoadgenEvent? {
        guard let first = heap.first, first.at <= now else { return nil }
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            siftDown(0)
        }
        return first
    }

    /// Every event still queued, in no particular order (used once, when a run ends).
    var remaining: [LoadgenEvent] { heap }

    private static func less(_ x: LoadgenEvent, _ y: LoadgenEvent) -> Bool {
        x.at < y.at || (x.at == y.at && x.order < y.order)
    }

    private mutating func siftUp(_ index: Int) {
        var child = index
        let item = heap[child]
        while child > 0 {
            let parent = (child - 1) / 2
            guard Self.less(item, heap[parent]) else { break }
            heap[child] = heap[parent]
            child = parent
        }
        heap[child] = item
    }

    private mutating func siftDown(_ index: Int) {
        var parent = index
        let item = heap[parent]
        let n = heap.count
        while true {
            let left = 2 * parent + 1
            guard left < n else { break }
            let right = left + 1
            let child = right < n && Self.less(heap[right], heap[left]) ? right : left
            guard Self.less(heap[child], item) else { break }
            heap[parent] = heap[child]
            parent = child
        }
        heap[parent] = item
    }
}
