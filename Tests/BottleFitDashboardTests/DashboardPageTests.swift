import BottleFitDashboard
import BottleFitMetricsServer
import Foundation
import Testing

/// The page must work with nothing but the endpoint that serves it: no CDN, no web font, no
/// link anywhere else (the Content-Security-Policy it is served with forbids them too).
@Suite struct DashboardPageTests {
    let routes = ControllerDashboard.routes(state: { "{}" })
    var page: String { routes.first { $0.path == "/" }!.body() }

    @Test func servesThePageAndItsState() {
        #expect(routes.map(\.path) == ["/", "/api/state"])
        #expect(routes[1].body() == "{}")
        #expect(page.hasPrefix("<!DOCTYPE html>"))
    }

    @Test func loadsNothingFromAnywhere() throws {
        let lower = page.lowercased()
        // No scheme-qualified or protocol-relative URL at all, not even in a comment.
        #expect(!lower.contains("://"))
        #expect(lower.firstMatch(of: /["'(]\/\//) == nil, "a protocol-relative URL")
        // No element that fetches: scripts and styles are inline, charts are drawn on canvases.
        #expect(lower.firstMatch(of: /<(script|img|link|iframe|object|embed|audio|video|source)\b[^>]*\b(src|href|data)\s*=/) == nil)
        #expect(!lower.contains("@import") && !lower.contains("url("))
        // The only request the script makes is to its own origin.
        let fetches = lower.matches(of: /fetch\(\s*"([^"]*)"/).map { String($0.1) }
        #expect(fetches == ["api/state"])
        #expect(!lower.contains("xmlhttprequest") && !lower.contains("websocket") && !lower.contains("eventsource"))
    }

    @Test func isServedUnderAPolicyThatForbidsOtherOrigins() throws {
        let headers = Dictionary(routes[0].headers, uniquingKeysWith: { a, _ in a })
        let policy = try #require(headers["Content-Security-Policy"])
        #expect(policy.contains("default-src 'none'") && policy.contains("connect-src 'self'"))
        #expect(!policy.contains("http"))
    }

    @Test func marksWhatTheCheckScriptWaitsFor() {
        // scripts/check-dashboard reads these from the rendered DOM.
        #expect(page.contains(#"<body data-rendered="0">"#))
        #expect(page.contains(#"body.setAttribute("data-rendered""#))
        #expect(page.contains(#""data-js-error""#))
    }
}
