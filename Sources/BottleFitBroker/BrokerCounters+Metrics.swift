import BottleFitMetrics
import BottleFitProtocol

extension BrokerCounters {
    /// The broker's families for `/metrics` (docs/metrics.md): these counters, the queue-time
    /// histogram, and the gauges of the latest STATS (`stats`, nil before the first).
    /// Every drop and discard reason is listed, at 0 when nothing happened, so series never appear late.
    public func metricFamilies(latestStats stats: StatsMessage?) -> [MetricFamily] {
        var families: [MetricFamily] = [
            .counter("bottlefit_broker_requests_received_total",
                     "Requests read from cameras: FRAMEs, and anything else answered as one (garbage answered BAD_REQUEST).", received),
            .counter("bottlefit_broker_frames_completed_total", "Requests that ended with a RESULT forwarded to the camera.", completed),
            .counter("bottlefit_broker_requests_dropped_total", "Requests that ended without a RESULT, by reason (each answered with an ERROR unless the camera left).",
                     DropReason.allCases.map { ([("reason", $0.rawValue)], dropped($0)) }),
            .gauge("bottlefit_broker_frames_queued", "Frames waiting in the broker queue.", Double(queued)),
            .gauge("bottlefit_broker_frames_in_flight", "Frames at workers, not yet answered.", Double(inFlight)),
            .counter("bottlefit_broker_frames_dispatched_total", "FRAMEs sent to workers (a requeued frame once per dispatch).", dispatched),
            .counter("bottlefit_broker_frames_requeued_total", "Frames put back in the queue because their worker was lost.", requeued),
            .counter("bottlefit_broker_messages_discarded_total", "Messages thrown away that were not camera requests, by reason.",
                     DiscardReason.allCases.map { ([("reason", $0.rawValue)], discarded($0)) }),
            .counter("bottlefit_broker_workers_joined_total", "READYs accepted (a worker joining or rejoining).", workersJoined),
            .counter("bottlefit_broker_workers_lost_total", "Workers declared lost (silence, DISCONNECT or a failed send).", workersLost),
            .counter("bottlefit_broker_stats_published_total", "STATS messages published.", statsPublished),
            MetricFamily(name: "bottlefit_broker_worker_busy_seconds_total", help: "Seconds workers held at least one frame, summed over workers (utilisation = its rate / the rate of the next).",
                         type: .counter, samples: [MetricSample(labels: [], value: workerBusySeconds)]),
            MetricFamily(name: "bottlefit_broker_worker_seconds_total", help: "Seconds of connected workers, summed over workers.",
                         type: .counter, samples: [MetricSample(labels: [], value: workerSeconds)]),
            .counter("bottlefit_broker_latency_reports_total", "Latency reports received from cameras.", latencyReports),
            .histogram("bottlefit_broker_queue_time_seconds", "How long frames waited in the broker queue before dispatch or expiry.",
                       [([], queueTime)]),
        ]
        guard let stats else { return families }
        let quantiles: [(String, Double)] = [("0.5", stats.queueTimeP50), ("0.95", stats.queueTimeP95), ("0.99", stats.queueTimeP99)]
        families += [
            .gauge("bottlefit_broker_queue_time_window_seconds",
                   "Queue-time percentiles of the latest STATS (the frames of the last queue-time window): what the controller reads.",
                   quantiles.map { ([("quantile", $0.0)], $0.1 / 1000) }),
            .gauge("bottlefit_broker_arrival_rate", "Requests per second over the latest STATS interval.", stats.arrivalRate),
            .gauge("bottlefit_broker_completion_rate", "RESULTs per second over the latest STATS interval.", stats.completionRate),
            .gauge("bottlefit_broker_drop_rate", "Drops per second over the latest STATS interval.", stats.dropRate),
            .gauge("bottlefit_broker_workers", "Connected workers.", Double(stats.workers.count)),
            .gauge("bottlefit_broker_worker_utilisation", "Utilisation over the latest STATS interval (STATS ut).", stats.utilisation ?? 0),
            .gauge("bottlefit_broker_worker_credit", "Frames the broker may still send each worker.",
                   stats.workers.map { ([("worker", $0.id)], Double($0.credit)) }),
            .gauge("bottlefit_broker_worker_frames_in_flight", "Frames at each worker, not yet answered.",
                   stats.workers.map { ([("worker", $0.id)], Double($0.inFlight)) }),
        ]
        if let camera = stats.cameraLatency {
            families += [
                .gauge("bottlefit_broker_reporting_cameras", "Cameras with a latency report in the report window.", Double(camera.cameras)),
                .gauge("bottlefit_broker_reported_edge_frames", "Edge frames counted by the cameras' reports in the window, by outcome.",
                       [([("outcome", "completed")], Double(camera.completed)), ([("outcome", "missed")], Double(camera.missed))]),
            ]
            if let p = camera.percentiles {
                families.append(.gauge(
                    "bottlefit_broker_camera_latency_window_seconds",
                    "End-to-end edge latency the cameras reported in the window (frame-weighted mean of their percentiles).",
                    [("0.5", p.p50), ("0.95", p.p95), ("0.99", p.p99)].map { ([("quantile", $0.0)], $0.1 / 1000) }))
            }
        }
        return families
    }
}
