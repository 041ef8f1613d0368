import BottleFitProtocol

extension BrokerScheduler {
    // MARK: Time

    /// Lets time pass: declares silent workers lost, expires waiting frames, gives up frames
    /// stuck at live workers, sends due HEARTBEATs and publishes STATS when due. The loop calls
    /// it on every turn; each duty runs only as often as it needs to.
    public mutating func tick(now: BrokerTime) -> [BrokerAction] {
        guard !isStopped else { return finish() }
        for worker in workers.silent(at: now.monotonic, expiry: policy.workerExpiry) {
            if let record = workers.remove(worker) { lose(record, reason: .silent, now) }
        }
        if now.monotonic - lastExpirySweep >= Self.expirySweepInterval {
            lastExpirySweep = now.monotonic
            for frame in queue.removeAll(where: { $0.isExpired(at: now) }) { expire(frame, now) }
        }
        if now.monotonic - lastHousekeeping >= policy.heartbeatInterval {
            lastHousekeeping = now.monotonic
            abandonStuckFrames(now)
            let horizon = policy.workerExpiry
            cameras = cameras.filter { now.monotonic - $0.value <= horizon }
        }
        for worker in workers.needingHeartbeat(at: now.monotonic, interval: policy.heartbeatInterval) {
            workers.sent(worker, now: now.monotonic)
            outbox.append(.control(worker: worker, message: .heartbeat(HeartbeatMessage())))
        }
        dispatch(now)
        if now.monotonic - lastStats.at >= policy.statsInterval {
            publishStats(now)
        }
        return finish()
    }

    /// Answers frames a live worker has held for `inFlightGrace` past their deadline. The camera
    /// gave up on them long ago; without this a worker that never answers would grow the table for ever.
    private mutating func abandonStuckFrames(_ now: BrokerTime) {
        let grace = UInt64(max(0, policy.inFlightGrace.milliseconds))
        let stuck = inFlight.filter { now.unixMilliseconds > $0.value.frame.deadline &+ grace }
        for (key, entry) in stuck.sorted(by: { $0.key.sequence < $1.key.sequence }) {
            inFlight[key] = nil
            workers.release(key, from: entry.worker, now: now.monotonic)
            let name = workers[entry.worker]?.workerID ?? "?"
            answer(key, .workerLost, "worker \(name) did not answer within \(grace) ms after the deadline", reason: .workerLost)
        }
    }

    // MARK: Stats

    /// The STATS figures now. Rates are per second since the last published STATS.
    public func statistics(at now: BrokerTime) -> StatsMessage {
        let p = queueTimes.percentiles([50, 95, 99], at: now.monotonic)
        let elapsed = max((now.monotonic - lastStats.at).fractionalMilliseconds / 1000, 1e-3)
        func rate(_ now: Int, _ then: Int) -> Double { Double(max(0, now - then)) / elapsed }
        return StatsMessage(
            timestamp: now.unixMilliseconds, queueDepth: queue.count,
            queueTimeP50: p[0], queueTimeP95: p[1], queueTimeP99: p[2],
            inFlight: inFlight.count,
            arrivalRate: rate(counters.received, lastStats.received),
            completionRate: rate(counters.completed, lastStats.completed),
            dropRate: rate(counters.droppedTotal, lastStats.dropped),
            workers: Array(workerSummaries.prefix(policy.limits.maxWorkers)),
            cameraLatency: cameraReports.summary(at: now.monotonic),
            utilisation: workers.utilisation(since: lastStats.at, at: now.monotonic),
            cameraModes: cameraReports.modes(at: now.monotonic))
    }

    /// Emits STATS and starts the next rate interval.
    mutating func publishStats(_ now: BrokerTime) {
        let stats = statistics(at: now)
        completionRate = stats.completionRate
        let elapsed = (now.monotonic - lastStats.at).fractionalMilliseconds / 1000
        if let u = stats.utilisation, elapsed > 0 {
            counters.workerSeconds += elapsed * Double(workers.count)
            counters.workerBusySeconds += u * elapsed * Double(workers.count)
        }
        lastStats = (now.monotonic, counters.received, counters.completed, counters.droppedTotal)
        workers.resetBusyTime(at: now.monotonic)
        counters.statsPublished += 1
        outbox.append(.publish(stats))
    }

    // MARK: Shutdown

    /// Stops the broker: every frame it holds, waiting or at a worker, is answered BUSY (the
    /// camera computes locally and comes back after the hint), workers and recently heard
    /// cameras are told DISCONNECT, and nothing is dispatched afterwards.
    public mutating func shutdown(now: BrokerTime) -> [BrokerAction] {
        guard !isStopped else { return finish() }
        isStopped = true
        let hint = policy.retryAfterMaximum
        for frame in queue.removeAll(where: { _ in true }) {
            answer(frame.key, .busy, "the broker is shutting down", reason: .shutdown, retryAfter: hint)
        }
        for (key, _) in inFlight.sorted(by: { $0.key.sequence < $1.key.sequence }) {
            answer(key, .busy, "the broker is shutting down", reason: .shutdown, retryAfter: hint)
        }
        inFlight.removeAll()
        let bye = Message.disconnect(DisconnectMessage(reason: "broker shutting down"))
        for record in workers.ordered {
            _ = workers.remove(record.routingID)
            outbox.append(.control(worker: record.routingID, message: bye))
        }
        for camera in cameras.keys.sorted(by: { $0.lexicographicallyPrecedes($1) }) {
            outbox.append(.reply(camera: camera, message: bye))
        }
        cameras.removeAll()
        return finish()
    }
}
