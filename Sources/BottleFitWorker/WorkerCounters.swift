import BottleFitMetrics
import BottleFitProtocol

/// Everything a tail worker counts, in one place (for logs, tests and `/metrics`).
///
/// Every work message ends in exactly one of: a RESULT (`completed`), an ERROR (`errors`,
/// EXPIRED included), or `abandoned` (held when the broker was declared dead; the broker
/// requeues or fails those itself). So `received == completed + errorsSent + abandoned`
/// once nothing is held.
public struct WorkerCounters: Sendable, Equatable {
    /// Work messages (4-frame envelopes) received, valid or not.
    public var received = 0
    /// RESULTs sent.
    public var completed = 0
    /// ERRORs sent about frames, by code (EXPIRED included).
    public var errors: [ErrorCode: Int] = [:]
    /// Batches computed.
    public var batches = 0
    /// Batches computed, by number of frames in them.
    public var batchSizes: [Int: Int] = [:]
    /// Frames dropped unanswered because the broker was declared dead while they were held.
    public var abandoned = 0
    /// READY messages sent (1 + reconnects).
    public var readySent = 0
    /// Times the worker gave up on a silent broker and reconnected.
    public var reconnects = 0
    /// HEARTBEATs sent.
    public var heartbeatsSent = 0
    /// Messages received from the broker on the control layout (heartbeats, errors, ...).
    public var controlReceived = 0
    /// Credits returned through CREDIT.
    public var creditsReturned = 0
    /// Messages with an envelope that is neither control (2 frames) nor work (4 frames), or
    /// control messages that did not decode; dropped.
    public var discarded = 0
    /// Messages that could not be queued on the socket (no connection, high-water mark); dropped.
    public var sendsDropped = 0
    /// Time each batch computed, in seconds.
    public var batchCompute = BucketHistogram()
    /// Frames per batch (bounds 1, 2, 4, ... 256).
    public var batchSize = BucketHistogram(upperBounds: [1, 2, 4, 8, 16, 32, 64, 128, 256])
    /// Time each answered frame waited at the worker, from receipt to the start of its batch, in seconds (RESULT's `qm`).
    public var frameWait = BucketHistogram()

    public init() {}

    /// ERRORs of code EXPIRED: frames whose deadline passed before computation began.
    public var expired: Int { errors[.expired, default: 0] }
    /// All ERRORs sent about frames.
    public var errorsSent: Int { errors.values.reduce(0, +) }
    /// Frames that went through the model.
    public var framesComputed: Int { batchSizes.reduce(0) { $0 + $1.key * $1.value } }
    /// Mean frames per batch, 0 before the first batch.
    public var meanBatchSize: Double { batches == 0 ? 0 : Double(framesComputed) / Double(batches) }

    mutating func recordError(_ code: ErrorCode) { errors[code, default: 0] += 1 }
    mutating func recordBatch(size: Int, computeMilliseconds: Double) {
        batches += 1
        batchSizes[size, default: 0] += 1
        batchSize.record(Double(size))
        batchCompute.record(computeMilliseconds / 1000)
    }
}
