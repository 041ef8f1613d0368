/// The broker's queue: one FIFO per camera, served round robin, so a camera sending ten times as
/// many frames as another gets no more than its turn.
///
/// The scheduler walks the ring with a cursor: it looks at the head frame of the camera under
/// the cursor and either takes it (the camera then waits for its next turn), drops it (expired:
/// the camera keeps its turn) or skips the camera (no worker for its model has credit). The
/// capacity bound is the scheduler's business; this type only counts.
struct CameraQueues: Sendable {
    private var queues: [CameraKey: FrameFIFO] = [:]
    /// Cameras with waiting frames, in serving order.
    private var ring: [CameraKey] = []
    private var cursor = 0
    /// Every waiting frame, to refuse a duplicate `(c, s)` and find a frame by key.
    private var keys: Set<FrameKey> = []

    /// Frames waiting, over all cameras.
    var count: Int { keys.count }
    var isEmpty: Bool { keys.isEmpty }
    /// Cameras with at least one frame waiting.
    var waitingCameras: Int { ring.count }

    func contains(_ key: FrameKey) -> Bool { keys.contains(key) }

    /// Frames waiting from one camera.
    func count(of camera: CameraKey) -> Int { queues[camera]?.count ?? 0 }

    /// Adds a frame behind its camera's other frames, or in front of them for a requeue.
    mutating func enqueue(_ frame: PendingFrame, atFront: Bool = false) {
        let camera = frame.key.camera
        if queues[camera] == nil {
            queues[camera] = FrameFIFO()
            // A new camera joins at the end of the round: it is served after those already waiting.
            ring.append(camera)
        }
        if atFront { queues[camera]!.prepend(frame) } else { queues[camera]!.append(frame) }
        keys.insert(frame.key)
    }

    // MARK: Round robin

    /// The head frame of the camera under the cursor.
    var current: PendingFrame? {
        guard !ring.isEmpty else { return nil }
        return queues[ring[cursor]]?.first
    }

    /// Takes the current head frame; its camera goes to the back of the round.
    mutating func takeCurrent() -> PendingFrame? {
        popCurrent(advance: true)
    }

    /// Removes the current head frame without using the camera's turn (an expired frame).
    mutating func dropCurrent() -> PendingFrame? {
        popCurrent(advance: false)
    }

    /// Leaves the current camera waiting and moves to the next.
    mutating func skipCurrent() {
        guard !ring.isEmpty else { return }
        cursor = (cursor + 1) % ring.count
    }

    private mutating func popCurrent(advance: Bool) -> PendingFrame? {
        guard !ring.isEmpty else { return nil }
        let camera = ring[cursor]
        guard let frame = queues[camera]?.popFirst() else { return nil }
        keys.remove(frame.key)
        if queues[camera]!.isEmpty {
            // Removing the camera slides the next one under the cursor: that is both "advance"
            // and "keep the turn" for a camera with nothing left.
            queues[camera] = nil
            ring.remove(at: cursor)
            if cursor >= ring.count { cursor = 0 }
        } else if advance {
            cursor = (cursor + 1) % ring.count
        }
        return frame
    }

    // MARK: Removal outside the round

    /// Removes the newest frame of the camera with the most frames waiting, if that camera has
    /// more than `threshold`: the victim of a push-out when the queue is full.
    mutating func removeNewestOfLongest(ifLongerThan threshold: Int) -> PendingFrame? {
        var longest: CameraKey?
        var longestCount = threshold
        for camera in ring {
            let n = queues[camera]!.count
            if n > longestCount { longest = camera; longestCount = n }
        }
        guard let longest, let frame = queues[longest]!.popLast() else { return nil }
        keys.remove(frame.key)
        if queues[longest]!.isEmpty { removeCamera(longest) }
        return frame
    }

    /// The waiting frame with this key, if any.
    func frame(_ key: FrameKey) -> PendingFrame? {
        guard keys.contains(key) else { return nil }
        return queues[key.camera]?.frames.first { $0.key == key }
    }

    /// Removes one frame by key (answered before its turn, e.g. a late result of a requeued frame).
    mutating func remove(_ key: FrameKey) -> PendingFrame? {
        guard keys.contains(key), var fifo = queues[key.camera] else { return nil }
        let gone = fifo.removeAll { $0.key == key }
        queues[key.camera] = fifo
        keys.remove(key)
        if fifo.isEmpty { removeCamera(key.camera) }
        return gone.first
    }

    /// Removes every frame matching `predicate`, across cameras.
    mutating func removeAll(where predicate: (PendingFrame) -> Bool) -> [PendingFrame] {
        var removed: [PendingFrame] = []
        for camera in ring {
            let gone = queues[camera]!.removeAll(where: predicate)
            guard !gone.isEmpty else { continue }
            removed += gone
        }
        guard !removed.isEmpty else { return [] }
        for frame in removed { keys.remove(frame.key) }
        for camera in ring where queues[camera]!.isEmpty { removeCamera(camera) }
        return removed
    }

    /// Every waiting frame, camera by camera.
    var allFrames: [PendingFrame] { ring.flatMap { Array(queues[$0]!.frames) } }

    private mutating func removeCamera(_ camera: CameraKey) {
        guard let index = ring.firstIndex(of: camera) else { return }
        queues[camera] = nil
        ring.remove(at: index)
        // Keep the cursor on the same camera it pointed at (or the one that slid into its place).
        if index < cursor { cursor -= 1 }
        if cursor >= ring.count { cursor = 0 }
    }
}
