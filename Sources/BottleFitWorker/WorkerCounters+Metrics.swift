import BottleFitMetrics
import BottleFitProtocol

extension WorkerCounters {
    /// The worker's families for `/metrics` (docs/metrics.md), every sample labelled with `workerID`.
    /// The ERROR codes a worker sends are listed at 0 when none was sent.
    public func metricFamilies(workerID: String) -> [MetricFamily] {
        let id = [(name: "worker", value: workerID)]
        let codes = Set([ErrorCode.expired, .badRequest, .unknownModel, .tooLarge, .unsupportedVersion, .internal]).union(errors.keys)
        return [
            .counter("bottlefit_worker_frames_received_total", "Work messages received from the broker, valid or not.", received, labels: id),
            .counter("bottlefit_worker_frames_completed_total", "RESULTs sent.", completed, labels: id),
            .counter("bottlefit_worker_frames_errored_total", "ERRORs sent about frames, by code (EXPIRED included).",
                     codes.sorted { $0.rawValue < $1.rawValue }.map { (id + [("code", $0.rawValue)], errors[$0, default: 0]) }),
            .counter("bottlefit_worker_frames_abandoned_total", "Frames held when the broker was declared dead (the broker requeues or fails them).", abandoned, labels: id),
            .counter("bottlefit_worker_batches_total", "Batches computed.", batches, labels: id),
            .histogram("bottlefit_worker_batch_size", "Frames per computed batch.", [(id, batchSize)]),
            .histogram("bottlefit_worker_batch_compute_seconds", "Time each batch computed.", [(id, batchCompute)]),
            .histogram("bottlefit_worker_frame_wait_seconds", "Time each answered frame waited at the worker before its batch started.", [(id, frameWait)]),
            .counter("bottlefit_worker_ready_sent_total", "READY messages sent (one per connection).", readySent, labels: id),
            .counter("bottlefit_worker_reconnects_total", "Times the worker gave up on a silent broker and reconnected.", reconnects, labels: id),
            .counter("bottlefit_worker_heartbeats_sent_total", "HEARTBEATs sent.", heartbeatsSent, labels: id),
            .counter("bottlefit_worker_control_received_total", "Control messages received from the broker.", controlReceived, labels: id),
            .counter("bottlefit_worker_credits_returned_total", "Credits returned through CREDIT.", creditsReturned, labels: id),
            .counter("bottlefit_worker_messages_discarded_total", "Messages with a wrong envelope or an undecodable control message.", discarded, labels: id),
            .counter("bottlefit_worker_sends_dropped_total", "Messages that could not be queued on the socket.", sendsDropped, labels: id),
        ]
    }
}
