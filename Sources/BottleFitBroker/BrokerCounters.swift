import BottleFitMetrics

/// Why a request from a camera ended without a RESULT. Each one was answered with an ERROR
/// (unless the camera had left), and each counts once in `BrokerCounters.dropped`.
public enum DropReason: String, CaseIterable, Sendable, Hashable {
    /// The queue was full (ERROR BUSY with a retry hint).
    case busy
    /// The deadline passed before a worker took the frame (ERROR EXPIRED).
    case expired
    /// The worker holding the frame died and it could not be dispatched again (ERROR WORKER_LOST).
    case workerLost = "worker_lost"
    /// The message did not decode, broke a rule, was a duplicate or is not valid on the camera hop (ERROR BAD_REQUEST).
    case badRequest = "bad_request"
    /// A size limit was exceeded (ERROR TOO_LARGE).
    case tooLarge = "too_large"
    /// The message's version is not 1 (ERROR UNSUPPORTED_VERSION).
    case unsupportedVersion = "unsupported_version"
    /// No connected worker serves the frame's model (ERROR UNKNOWN_MODEL).
    case unknownModel = "unknown_model"
    /// The worker answered the frame with an ERROR of its own, forwarded to the camera.
    case workerError = "worker_error"
    /// The camera sent DISCONNECT while the frame waited; it was dropped without an answer.
    case cameraGone = "camera_gone"
    /// The broker stopped while it held the frame (ERROR BUSY, so the camera retries later).
    case shutdown
}

/// Why a message that was not a camera's request was thrown away. Nothing here is a frame, so
/// these never enter the frame balance; they are counted so that no message vanishes unseen.
public enum DiscardReason: String, CaseIterable, Sendable, Hashable {
    /// A RESULT or ERROR for a frame the broker no longer tracks, or from a worker that does not hold it.
    case lateAnswer = "late_answer"
    /// A worker message that did not decode, had the wrong layout or is not valid on the worker hop.
    case badWorkerMessage = "bad_worker_message"
    /// A message from a worker connection that never sent READY (answered DISCONNECT so it sends READY).
    case unknownWorker = "unknown_worker"
    /// A message of another protocol version that carries no request (dropped, never answered).
    case unsupportedVersion = "unsupported_version"
    /// An ERROR sent by a camera or a worker on its control channel: errors are never answered.
    case errorMessage = "error_message"
    /// A message broke the receive limits (too many frames or bytes) and was discarded whole.
    case oversized
    /// A message without a routing id or of a layout nobody can answer.
    case badEnvelope = "bad_envelope"
    /// A reply, forward or dispatch that libzmq refused: the peer is gone or its queue is full.
    case undeliverable
}

/// Every count the broker keeps, in one value: a snapshot can be published, logged or checked.
///
/// Frames balance at every step: `received == completed + droppedTotal + queued + inFlight`.
/// `received` counts every request a camera sent (FRAMEs, and anything else answered as one,
/// such as garbage answered BAD_REQUEST); HEARTBEAT and DISCONNECT are not requests.
public struct BrokerCounters: Sendable, Equatable {
    /// Requests read from cameras.
    public var received = 0
    /// FRAMEs sent to workers, a requeued frame once per dispatch.
    public var dispatched = 0
    /// RESULTs forwarded to cameras.
    public var completed = 0
    /// Frames put back in the queue because their worker was lost.
    public var requeued = 0
    /// Requests that ended without a RESULT, by reason.
    public var dropped: [DropReason: Int] = [:]
    /// Messages thrown away that were not camera requests, by reason.
    public var discarded: [DiscardReason: Int] = [:]
    /// Frames waiting in the queue now.
    public var queued = 0
    /// Frames at workers now, not yet answered.
    public var inFlight = 0
    /// READYs accepted (a worker joining or rejoining).
    public var workersJoined = 0
    /// Workers declared lost (silence, DISCONNECT or a failed send).
    public var workersLost = 0
    /// STATS messages published.
    public var statsPublished = 0
    /// Seconds workers spent holding at least one frame, summed over workers, and seconds of
    /// connected workers: their ratio over any interval is the edge's utilisation there.
    public var workerBusySeconds = 0.0
    public var workerSeconds = 0.0
    /// Latency reports received from cameras (carried by their HEARTBEATs).
    public var latencyReports = 0
    /// How long frames waited in the queue before dispatch or expiry, in seconds, since the start.
    public var queueTime = BucketHistogram()

    public init() {}

    /// Drops for one reason.
    public func dropped(_ reason: DropReason) -> Int { dropped[reason, default: 0] }
    /// Discards for one reason.
    public func discarded(_ reason: DiscardReason) -> Int { discarded[reason, default: 0] }
    /// Drops for every reason.
    public var droppedTotal: Int { dropped.values.reduce(0, +) }
    /// Discards for every reason.
    public var discardedTotal: Int { discarded.values.reduce(0, +) }

    /// Whether every request received is accounted for: completed, dropped, queued or in flight.
    public var isBalanced: Bool { received == completed + droppedTotal + queued + inFlight }

    mutating func drop(_ reason: DropReason, count: Int = 1) { dropped[reason, default: 0] += count }
    mutating func discard(_ reason: DiscardReason, count: Int = 1) { discarded[reason, default: 0] += count }
}

extension BrokerCounters: CustomStringConvertible {
    public var description: String {
        func list<K: RawRepresentable<String>>(_ d: [K: Int]) -> String {
            d.isEmpty ? "none" : d.map { "\($0.key.rawValue)=\($0.value)" }.sorted().joined(separator: ",")
        }
        return "received=\(received) dispatched=\(dispatched) completed=\(completed) requeued=\(requeued) "
            + "queued=\(queued) in_flight=\(inFlight) dropped[\(list(dropped))] discarded[\(list(discarded))]"
    }
}
