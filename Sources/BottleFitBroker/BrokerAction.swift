import BottleFitProtocol

/// Something the scheduler decided and the socket loop must do. The scheduler never touches a
/// socket; it returns these in order, and the loop performs them.
public enum BrokerAction: Sendable, Equatable {
    /// Send `message` to a camera: `[camera-rid, empty, message]` on the frontend.
    case reply(camera: [UInt8], message: Message)
    /// Forward a worker's RESULT or ERROR to a camera byte for byte: `[camera-rid, empty, body]`.
    case forward(camera: [UInt8], body: [UInt8])
    /// Send a FRAME to a worker: `[worker-rid, empty, camera-rid, empty, body]` on the backend.
    /// If libzmq refuses it, the loop reports `dispatchFailed`.
    case dispatch(worker: [UInt8], frame: FrameKey, body: [UInt8])
    /// Send a control message (HEARTBEAT, DISCONNECT, ERROR) to a worker: `[worker-rid, empty, message]`.
    case control(worker: [UInt8], message: Message)
    /// Publish STATS: `["stats", message]` on the PUB socket.
    case publish(StatsMessage)
    /// Something worth a log line; no I/O.
    case note(BrokerEvent)
}

/// Events the scheduler reports for logs (and tests): joins, losses, answers that go nowhere.
public enum BrokerEvent: Sendable, Equatable {
    /// A worker sent READY (`replaced`: its connection had sent READY before).
    case workerJoined(workerID: String, models: [String], credit: Int, replaced: Bool)
    /// A worker left or was declared lost; what happened to the frames it held.
    case workerLost(workerID: String, reason: WorkerLossReason, requeued: Int, failed: Int)
    /// A message was thrown away (not a camera request); `detail` says what was wrong with it.
    case discarded(DiscardReason, detail: String)
}

/// Why the broker stopped using a worker.
public enum WorkerLossReason: String, Sendable, Equatable {
    /// No message for `heartbeatInterval * liveness`.
    case silent
    /// The worker sent DISCONNECT.
    case disconnected
    /// The worker sent READY again on the same connection: it restarted, and what it held is gone.
    case restarted
    /// libzmq refused a frame for it (the connection is gone or its queue is full).
    case unreachable
    /// The broker is stopping.
    case shutdown
}
