import BottleFitMetrics
import BottleFitProtocol

extension ControllerCounters {
    /// The controller's families for `/metrics` (docs/metrics.md): its counters, the fraction and
    /// condition in force, and the signals of the last STATS it read against their objectives.
    public func metricFamilies(
        fraction: Double, edgeFloor: Double = 0, condition: EdgeCondition, latestStats stats: StatsMessage?, settings: ControllerSettings
    ) -> [MetricFamily] {
        let conditions: [EdgeCondition] = [.unknown, .overloaded, .steady, .healthy, .underused, .silent]
        var families: [MetricFamily] = [
            .counter("bottlefit_controller_decisions_total", "Decisions taken: one per STATS, plus one per entry into silence.", decisions),
            .counter("bottlefit_controller_raises_total", "Decisions that raised the share of every camera's frames sent local.", raises),
            .counter("bottlefit_controller_raises_by_signal_total", "Raises by the signal over its objective (a raise with two signals counts for both).",
                     ControllerSignal.allCases.map { ([("signal", $0.rawValue)], raisesBySignal[$0, default: 0]) }),
            .counter("bottlefit_controller_lowers_total", "Decisions that lowered the fraction (staged recovery).", lowers),
            .counter("bottlefit_controller_silences_total", "Times the broker fell silent.", silences),
            .counter("bottlefit_controller_stats_received_total", "STATS decoded and given to the policy.", statsReceived),
            .counter("bottlefit_controller_stats_rejected_total", "Messages on the STATS socket that were not a valid STATS.", statsRejected),
            .counter("bottlefit_controller_directives_published_total", "DIRECTIVEs handed to the PUB socket (new and re-published).", directivesPublished),
            .counter("bottlefit_controller_directives_unsent_total", "DIRECTIVEs the PUB socket refused.", directivesUnsent),
            .gauge("bottlefit_controller_local_fraction", "The share of every camera's frames the directive in force sends local (DIRECTIVE es = 1 - this).", fraction),
            .gauge("bottlefit_controller_edge_floor", "The share of its frames every camera is told to send to the edge at least (DIRECTIVE ef; 0: no floor).", edgeFloor),
            .gauge("bottlefit_controller_condition", "1 for the edge condition of the last decision, 0 for the others.",
                   conditions.map { ([("condition", $0.rawValue)], $0 == condition ? 1 : 0) }),
            .gauge("bottlefit_controller_objective_seconds", "The objectives the signals are compared against.",
                   [([("signal", ControllerSignal.queueTime.rawValue)], settings.sloMilliseconds / 1000),
                    ([("signal", ControllerSignal.cameraLatency.rawValue)], settings.latencySloMilliseconds / 1000)]),
        ]
        guard let stats else { return families }
        var signals: [(labels: [(name: String, value: String)], value: Double)] = [
            ([("signal", ControllerSignal.queueTime.rawValue)], stats.queueTimeP95 / 1000),
        ]
        if let p = stats.cameraLatency?.percentiles {
            signals.append(([("signal", ControllerSignal.cameraLatency.rawValue)], p.p95 / 1000))
        }
        families.append(.gauge("bottlefit_controller_signal_p95_seconds", "The p95 of each latency signal in the last STATS read.", signals))
        if let camera = stats.cameraLatency {
            families.append(.gauge("bottlefit_controller_camera_miss_ratio", "Missed share of the edge frames the cameras reported, in the last STATS read.", camera.missRatio))
            families.append(.gauge("bottlefit_controller_camera_local_share", "Share of the frames the cameras reported that ran locally, in the last STATS read.", camera.localShare))
        }
        if let u = stats.utilisation {
            families.append(.gauge("bottlefit_controller_edge_utilisation", "The workers' utilisation in the last STATS read (share of time holding a frame).", u))
        }
        return families
    }
}
