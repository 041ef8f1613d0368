import BottleFitMetrics

/// A running camera as `/metrics` shows it: its counters and where it stands with the edge.
public struct CameraStatus: Sendable, Equatable {
    public var accounting: FrameAccounting
    /// `healthy`, `congested`, `starting`, `dead` or `incompatible` (`CameraPolicy.EdgeState`).
    public var edgeState: String
    /// Frames sent to the edge and not yet settled.
    public var framesAtEdge: Int
    /// Whether a controller's `local` directive keeps the camera off the edge now.
    public var obeyingLocalDirective: Bool
    /// The share of frames the camera sends to the edge now (its own, capped by a directive).
    public var edgeShare: Double
    /// Changes of the edge state so far.
    public var stateChanges: Int

    public init(
        accounting: FrameAccounting = FrameAccounting(), edgeState: String = "healthy", framesAtEdge: Int = 0,
        obeyingLocalDirective: Bool = false, edgeShare: Double = 1, stateChanges: Int = 0
    ) {
        self.accounting = accounting
        self.edgeState = edgeState
        self.framesAtEdge = framesAtEdge
        self.obeyingLocalDirective = obeyingLocalDirective
        self.edgeShare = edgeShare
        self.stateChanges = stateChanges
    }

    /// Every edge state's name, in the order `/metrics` lists them.
    public static let edgeStates = CameraPolicy.EdgeState.names

    /// The camera's families for `/metrics` (docs/metrics.md), every sample labelled with `cameraID`.
    /// Every drop reason and path is listed, at 0 when nothing happened.
    public func metricFamilies(cameraID: String, mode: CameraMode) -> [MetricFamily] {
        let id = [(name: "camera", value: cameraID)]
        let a = accounting
        let paths = CompletionPath.allCases
        return [
            .counter("bottlefit_camera_frames_offered_total", "Frames taken from the source (inputs it skipped included).", a.offered, labels: id),
            .counter("bottlefit_camera_frames_completed_total", "Frames completed, by where they were computed.",
                     paths.map { (id + [("path", $0.rawValue)], $0 == .edge ? a.completedEdge : a.completedLocal) }),
            .counter("bottlefit_camera_frames_dropped_total", "Frames that ended without a result, by reason.",
                     DropReason.all.map { (id + [("reason", $0.rawValue)], a.dropped[$0, default: 0]) }),
            .gauge("bottlefit_camera_frames_in_flight", "Frames offered and not yet settled (offered = completed + dropped + in flight).",
                   Double(a.inFlight), labels: id),
            .counter("bottlefit_camera_frames_sent_total", "FRAME messages handed to the socket (split and offload).", a.sent, labels: id),
            .counter("bottlefit_camera_frames_fell_back_total", "Frames computed locally after the edge failed them (part of completed with path local).", a.fellBack, labels: id),
            .counter("bottlefit_camera_frames_late_total", "Frames completed after their deadline (part of completed).", a.late, labels: id),
            .histogram("bottlefit_camera_latency_seconds", "End-to-end latency of completed frames, from the scheduled (or capture) time, by path.",
                       paths.map { (id + [("path", $0.rawValue)], a.latencyBuckets[$0] ?? BucketHistogram()) }),
            .counter("bottlefit_camera_ignored_replies_total", "Replies for frames already settled or never sent.", a.ignoredReplies, labels: id),
            .counter("bottlefit_camera_undecodable_messages_total", "Messages from the broker or controller that could not be used.", a.undecodableMessages, labels: id),
            .counter("bottlefit_camera_directives_obeyed_total", "Controller directives this camera obeyed.", a.directivesObeyed, labels: id),
            .counter("bottlefit_camera_latency_reports_sent_total", "Latency reports sent to the broker.", a.latencyReportsSent, labels: id),
            .gauge("bottlefit_camera_frames_at_edge", "Frames sent to the edge and not yet settled.", Double(framesAtEdge), labels: id),
            .gauge("bottlefit_camera_edge_state", "1 for the camera's view of the edge now, 0 for the other states.",
                   Self.edgeStates.map { (id + [("state", $0)], $0 == edgeState ? 1 : 0) }),
            .gauge("bottlefit_camera_edge_share", "Share of frames the camera sends to the edge now (1 when healthy).", edgeShare, labels: id),
            .counter("bottlefit_camera_edge_state_changes_total", "Changes of the camera's edge state.", stateChanges, labels: id),
            .gauge("bottlefit_camera_local_directive", "1 while a controller directive keeps the camera computing locally.",
                   obeyingLocalDirective ? 1 : 0, labels: id + [("mode", mode.rawValue)]),
        ]
    }
}
