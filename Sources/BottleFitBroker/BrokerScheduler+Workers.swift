import BottleFitProtocol

/// A worker's answer to one frame (RESULT or ERROR), as read from the backend.
public struct WorkerAnswer: Sendable, Equatable {
    /// Which frame: the echoed camera routing id and the answer's `c` and `s`.
    public var frame: FrameKey
    /// The answer as the worker sent it, forwarded to the camera unchanged.
    public var body: [UInt8]
    /// nil for a RESULT; the code of an ERROR.
    public var errorCode: ErrorCode?
    /// A RESULT's `b`: the size of the batch that computed the frame (nil for an ERROR).
    public var batchSize: Int?

    public init(frame: FrameKey, body: [UInt8], errorCode: ErrorCode? = nil, batchSize: Int? = nil) {
        self.frame = frame
        self.body = body
        self.errorCode = errorCode
        self.batchSize = batchSize
    }
}

extension BrokerScheduler {
    // MARK: Workers

    /// READY: the connection becomes a worker with these models and this credit. READY on a
    /// connection that already sent one means the worker restarted: what it held is handled as lost.
    public mutating func workerReady(_ ready: ReadyMessage, from worker: [UInt8], now: BrokerTime) -> [BrokerAction] {
        let credit = min(ready.credit, policy.limits.maxCredit)
        let previous = workers.register(
            routingID: worker, workerID: ready.workerID, models: ready.models, credit: credit, now: now.monotonic)
        counters.workersJoined += 1
        outbox.append(.note(.workerJoined(workerID: ready.workerID, models: ready.models, credit: credit, replaced: previous != nil)))
        if let previous { lose(previous, reason: .restarted, now) }
        dispatch(now)
        return finish()
    }

    /// CREDIT: the worker can take `credits` more frames.
    public mutating func workerCredit(_ credits: Int, from worker: [UInt8], now: BrokerTime) -> [BrokerAction] {
        guard workers[worker] != nil else { return unknownWorker(worker) }
        workers.heard(worker, now: now.monotonic)
        workers.addCredit(credits, to: worker, maximum: policy.limits.maxCredit)
        dispatch(now)
        return finish()
    }

    /// HEARTBEAT (or any other sign of life) from a worker.
    public mutating func workerHeartbeat(from worker: [UInt8], now: BrokerTime) -> [BrokerAction] {
        guard workers[worker] != nil else { return unknownWorker(worker) }
        workers.heard(worker, now: now.monotonic)
        return finish()
    }

    /// Any message from a worker proves it alive, even one that is then discarded.
    public mutating func workerHeard(from worker: [UInt8], now: BrokerTime) {
        workers.heard(worker, now: now.monotonic)
    }

    /// DISCONNECT from a worker: handled at once like a worker that went silent.
    public mutating func workerDisconnected(_ worker: [UInt8], now: BrokerTime) -> [BrokerAction] {
        if let record = workers.remove(worker) {
            lose(record, reason: .disconnected, now)
            dispatch(now)
        }
        return finish()
    }

    /// libzmq refused a FRAME for `worker` (its connection is gone, or its queue is full): the
    /// worker is treated as lost, so the frame and the others it held are requeued or answered.
    public mutating func dispatchFailed(to worker: [UInt8], frame: FrameKey, now: BrokerTime) -> [BrokerAction] {
        counters.discard(.undeliverable)
        if let record = workers.remove(worker) {
            lose(record, reason: .unreachable, now)
            dispatch(now)
        }
        return finish()
    }

    /// A RESULT or ERROR for a frame. It settles the frame if the sender holds it, or held it
    /// before it was requeued (a late answer then still spares a second computation). Any other
    /// answer is for a frame already settled, or not the sender's to answer: dropped and counted.
    public mutating func workerAnswered(_ answer: WorkerAnswer, from worker: [UInt8], now: BrokerTime) -> [BrokerAction] {
        workers.heard(worker, now: now.monotonic)
        let key = answer.frame
        if let entry = inFlight[key], entry.worker == worker || entry.frame.previousWorker == worker {
            if entry.worker == worker, let sent = entry.frame.dispatchedAt {
                workers.recordService(dispatchedAt: sent, model: entry.frame.model, of: worker, now: now.monotonic)
            }
            if let size = answer.batchSize { workers.recordBatch(size, of: worker) }
            inFlight[key] = nil
            workers.release(key, from: entry.worker, now: now.monotonic)
        } else if let waiting = queue.frame(key), waiting.previousWorker == worker {
            _ = queue.remove(key)
        } else {
            counters.discard(.lateAnswer)
            outbox.append(.note(.discarded(.lateAnswer, detail: "answer for \(key) that the broker does not expect from this worker")))
            return finish()
        }
        switch answer.errorCode {
        case nil: counters.completed += 1
        case .expired?: counters.drop(.expired)
        case _?: counters.drop(.workerError)
        }
        outbox.append(.forward(camera: key.cameraRoutingID, body: answer.body))
        return finish()
    }

    /// A message from a connection that never sent READY (or was declared lost): told DISCONNECT,
    /// so a live worker reconnects and sends READY instead of waiting in vain for frames.
    mutating func unknownWorker(_ worker: [UInt8]) -> [BrokerAction] {
        counters.discard(.unknownWorker)
        outbox.append(.control(worker: worker, message: .disconnect(DisconnectMessage(reason: "unknown worker: send READY"))))
        return finish()
    }

    /// Takes a worker's frames back: each is dispatched once more if it was dispatched only
    /// once, its deadline allows and a worker serves its model; otherwise answered WORKER_LOST.
    mutating func lose(_ record: WorkerRecord, reason: WorkerLossReason, _ now: BrokerTime) {
        counters.workersLost += 1
        var requeued = 0, failed = 0
        // Newest first, each put in front of its camera's queue, so the oldest ends up first.
        let keys = record.inFlight.sorted { $0.sequence > $1.sequence }
        for key in keys {
            guard var frame = inFlight.removeValue(forKey: key)?.frame else { continue }
            if reason != .shutdown, frame.dispatches < 2, !frame.isExpired(at: now), workers.serves(frame.model) {
                frame.previousWorker = record.routingID
                frame.enqueuedAt = now.monotonic
                queue.enqueue(frame, atFront: true)
                counters.requeued += 1
                requeued += 1
            } else {
                answer(key, .workerLost, "worker \(record.workerID) holding the frame was lost (\(reason.rawValue))", reason: .workerLost)
                failed += 1
            }
        }
        outbox.append(.note(.workerLost(workerID: record.workerID, reason: reason, requeued: requeued, failed: failed)))
        // Frames waiting for a model nobody serves any more would only expire: answer them now.
        let ledger = workers
        let orphans = queue.removeAll { !ledger.serves($0.model) }
        for frame in orphans {
            answer(frame.key, .unknownModel, "the last worker serving model \(frame.model) left", reason: .unknownModel)
        }
    }
}
