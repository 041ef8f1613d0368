import BottleFitController
import BottleFitMetricsServer

/// The controller's live dashboard: `GET /` (one self-contained HTML page, `DashboardPage.html`)
/// and `GET /api/state` (`DashboardState` as JSON, which the page polls every second), served by
/// the controller's `--metrics` endpoint beside `/metrics` and `/healthz` (docs/metrics.md).
public enum ControllerDashboard {
    /// The page may load nothing from anywhere: inline script and style only, data from its own origin.
    public static let contentSecurityPolicy =
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'"

    /// The two routes, reading `controller` at every request.
    public static func routes(_ controller: Controller) -> [ReadOnlyRoute] {
        routes { controller.dashboardState().json() }
    }

    /// The two routes around any source of the state's JSON (tests give a fixed one).
    public static func routes(state: @escaping @Sendable () -> String) -> [ReadOnlyRoute] {
        [
            ReadOnlyRoute(
                path: "/", contentType: "text/html; charset=utf-8",
                headers: [("Content-Security-Policy", contentSecurityPolicy), ("Cache-Control", "no-store")]
            ) { DashboardPage.html },
            ReadOnlyRoute(
                path: "/api/state", contentType: "application/json",
                headers: [("Cache-Control", "no-store")], body: state),
        ]
    }
}
