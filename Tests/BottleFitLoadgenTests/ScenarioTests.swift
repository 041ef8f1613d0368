import Foundation
import Testing
@testable import BottleFitLoadgen

@Suite struct ScenarioTests {
    let profiles = repositoryRoot.appendingPathComponent("profiles").path

    func resolve(_ yaml: String, commandLine: [String: [String]] = [:]) throws -> (LoadgenPlan, LoadgenRunOptions) {
        var settings = try LoadgenScenario.parse(yaml, file: "s.yaml")
        settings.apply(commandLine: ["profiles": [profiles]].merging(commandLine) { $1 })
        return try settings.resolve()
    }

    @Test func aScenarioWithGroupsResolvesWithTheShippedProfiles() throws {
        let (plan, options) = try resolve("""
            broker: tcp://127.0.0.1:5555
            duration: 20s
            device: raspberry-pi-4      # a default for every group
            fail_if: ["p99<200ms", "unaccounted==0"]
            groups:
              - name: pis
                cameras: 40
                rate: 5
                mode: split=0.5,offload=0.25,local=0.25
                uplink: wifi-20mbit
              - name: nanos
                cameras: 10
                device: jetson-nano
                shape: ramp
                rate: 1
                ramp_to: 10
                arrivals: poisson
            """)
        #expect(plan.groups.count == 2 && plan.durationSeconds == 20 && plan.cameraCount == 50)
        #expect(plan.groups[0].device.name == "raspberry-pi-4" && plan.groups[1].device.name == "jetson-nano")
        #expect(plan.groups[0].modes.map(\.share) == [0.5, 0.25, 0.25])
        #expect(plan.groups[1].shape == .ramp(from: 1, to: 10, over: 20) && plan.groups[1].arrivals == .poisson)
        #expect(plan.groups[0].uplink.bitsPerSecond == 20e6)
        #expect(options.thresholds.count == 2 && options.broker == "tcp://127.0.0.1:5555")
        // The emulated ResNet-50 head and whole model on the Pi: 2 x GMAC / its effective GFLOP/s.
        let gflops = plan.groups[0].device.effectiveGFLOPS
        #expect(abs(plan.groups[0].device.headMilliseconds(plan.groups[0].model) - 2 * 0.121 / gflops * 1000) < 0.01)
        #expect(abs(plan.groups[0].device.fullMilliseconds(plan.groups[0].model) - 2 * 4.09 / gflops * 1000) < 0.01)
    }

    @Test func commandLineGroupOptionsOverrideEveryGroup() throws {
        let (plan, _) = try resolve("""
            broker: tcp://127.0.0.1:5555
            groups:
              - {name: a, cameras: 2}
              - {name: b, cameras: 3, rate: 9}
            """, commandLine: ["rate": ["2"], "duration": ["5"]])
        #expect(plan.groups.map(\.shape) == [.steady(rate: 2), .steady(rate: 2)])
        #expect(plan.durationSeconds == 5)
    }

    @Test func errorsNameTheFileLineAndKey() throws {
        func message(_ yaml: String) -> String {
            do { _ = try resolve(yaml); return "no error" } catch { return "\(error)" }
        }
        #expect(message("broker: x\nrat: 5\n").hasPrefix("s.yaml:2: rat: unknown key rat"))
        #expect(message("broker: x\ngroups:\n  - cameras: 2\n    rate: 0\n") == "s.yaml:4: groups[0].rate: the rate is 0 for the whole run: no frame would be offered")
        #expect(message("broker: x\ncameras: many\n") == "s.yaml:2: cameras: expected an integer, found many")
        #expect(message("broker: x\ndevice: toaster\n").hasPrefix("s.yaml:2: device: unknown device profile toaster: no file"))
        #expect(message("broker: x\nshape: ramp\n") == "s.yaml:2: shape: shape ramp needs ramp_to")
        #expect(message("broker: x\nmode: split=0.5,local=0.4\n") == "s.yaml:2: mode: mode shares must add up to 1, not 0.9")
        #expect(message("broker: x\nfail_if: p99~3\n").hasPrefix("s.yaml:2: fail_if: threshold p99~3"))
        #expect(message("broker: [x\n").contains("not valid YAML"))
        #expect(message("broker: x\nrate: 5\nrate: 50\n") == "s.yaml:3: duplicate key 'rate' (first at line 2); a key may appear once per mapping")
        #expect(message("broker: x\ngroups:\n  - cameras: 2\n    cameras: 3\n").hasPrefix("s.yaml:4: duplicate key 'cameras' (first at line 3)"))
        #expect(message("rate: 5\n") == "--broker (scenario key broker) is required unless --sink or --topology is given")
    }

    @Test func aProfileMissingAFieldOrASourceIsRefusedWithItsLine() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lg-profiles-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("devices"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let library = ProfileLibrary(directory: dir.path)
        let file = dir.appendingPathComponent("devices/board.yaml")
        try "name: board\neffective_gflops: 5\njpeg_encode_ms: 2\nactive_w: 5\nidle_w: 2\n".write(to: file, atomically: true, encoding: .utf8)
        #expect(throws: LoadgenError("\(file.path):1: missing required key radio_nj_per_byte")) { try library.device("board") }
        try """
            name: board
            effective_gflops: 5
            jpeg_encode_ms: 2
            active_w: 5
            idle_w: 2
            radio_nj_per_byte: 100
            sources:
              effective_gflops: measured
            """.write(to: file, atomically: true, encoding: .utf8)
        #expect(throws: LoadgenError("\(file.path):8: sources: missing the source of jpeg_encode_ms (a citation, or `assumption: why`)")) {
            try library.device("board")
        }
    }

    @Test func theShippedProfilesLoadAndCiteEveryFigure() throws {
        for name in shippedProfiles.available("devices") { _ = try shippedProfiles.device(name) }
        for name in shippedProfiles.available("uplinks") { _ = try shippedProfiles.uplink(name) }
        #expect(shippedProfiles.available("devices").contains("raspberry-pi-4"))
        #expect(shippedProfiles.available("devices").contains("jetson-nano"))
        #expect(try shippedProfiles.model("resnet50-bottlefit-c12").bottleneckBytes == 10_092)
    }

    @Test func everyOptionIsAScenarioKeyAndEveryKeyAnOption() throws {
        // Each key of the table is accepted by the scenario reader (a typo is not)...
        for option in LoadgenOption.all {
            let value = option.key == "fail_if" ? "unaccounted==0" : "1"
            let yaml = option.perGroup ? "groups:\n  - \(option.key): \(value)\n" : "\(option.key): \(value)\n"
            _ = try LoadgenScenario.parse(yaml, file: "s.yaml")
        }
        // ...and flags are the keys with dashes.
        #expect(LoadgenOption.all.first { $0.key == "max_in_flight" }!.flag == "--max-in-flight")
        #expect(Set(LoadgenOption.keys).count == LoadgenOption.all.count)
    }
}

@Suite struct ThresholdTests {
    func report(p99: Double, edge: Int, local: Int, unaccounted: Int = 0) -> LoadgenReport {
        let summary = LoadgenReport.LatencySummary(count: 10, p50: 1, p90: 2, p99: p99, p999: p99, max: p99, mean: 1)
        let totals = LoadgenReport.Totals(
            offered: edge + local + unaccounted, sent: edge, completedEdge: edge, completedLocal: local, completedFallback: 0,
            dropped: ["busy": 0], droppedTotal: 0, unaccounted: unaccounted, lateCompletions: 0, lateArrivals: 0, uplinkLost: 0,
            edgeErrors: [:], ignoredReplies: 0, undecodable: 0, offeredPerS: 10, completedPerS: 10,
            edgeFraction: Double(edge) / Double(edge + local), localFraction: Double(local) / Double(edge + local), dropFraction: 0,
            stateChangesPerCameraPerMinute: 0.5, edgeUtilisation: nil)
        return LoadgenReport(
            fidelity: "emulated", startedAtMs: 0, durationS: 1, elapsedS: 1, command: [], totals: totals,
            latencyMs: ["all": summary, "edge": summary], schedulingErrorMs: summary, groups: [], timeseries: [], stats: [],
            directives: [], cdf: [:], thresholds: [], cpuS: 0)
    }

    @Test func thresholdsParseWithUnitsAndCompare() throws {
        let r = report(p99: 150, edge: 95, local: 5)
        #expect(try Threshold(parsing: "p99<200ms").evaluate(r).passed)
        #expect(try !Threshold(parsing: "p99 < 0.1s").evaluate(r).passed)
        #expect(try Threshold(parsing: "edge_fraction>0.9").evaluate(r).passed)
        #expect(try Threshold(parsing: "local_fraction<=5%").evaluate(r).passed)
        #expect(try Threshold(parsing: "unaccounted==0").evaluate(r).passed)
        #expect(try !Threshold(parsing: "unaccounted==0").evaluate(report(p99: 1, edge: 1, local: 1, unaccounted: 1)).passed)
        #expect(try Threshold(parsing: "edge_p99<=150").evaluate(r).passed)
        #expect(try Threshold(parsing: "mode_changes<=2").evaluate(r).passed)
        #expect(try !Threshold(parsing: "edge_utilisation>=0.85").evaluate(r).passed)  // no STATS: no data
        // No data is a failure, not a pass.
        #expect(try !Threshold(parsing: "fallback_p99<1s").evaluate(r).passed)
        #expect(throws: LoadgenError.self) { try Threshold(parsing: "p98<1ms") }
        #expect(throws: LoadgenError.self) { try Threshold(parsing: "p99<fast") }
        #expect(throws: LoadgenError.self) { try Threshold(parsing: "p99") }
    }

    @Test func theExitStatusPutsTheInvariantFirst() throws {
        var r = report(p99: 500, edge: 1, local: 1, unaccounted: 2)
        r.thresholds = [try Threshold(parsing: "p99<200ms").evaluate(r)]
        #expect(Loadgen.status(of: r) == .unaccounted)
        r.totals.unaccounted = 0
        #expect(Loadgen.status(of: r) == .thresholdFailed)
        r.thresholds = []
        #expect(Loadgen.status(of: r) == .ok)
    }

    @Test func theReportRoundTripsAndTheHTMLIsSelfContained() throws {
        let plan = LoadgenPlan(groups: [group(cameras: 2, rate: 10)], durationSeconds: 2)
        let (r, _) = try runVirtual(plan)
        let back = try LoadgenReport.decode(r.json())
        #expect(back.totals.offered == r.totals.offered && back.schemaVersion == 2)
        let json = String(decoding: try r.json(), as: UTF8.self)
        #expect(json.contains("\"completed_edge\"") && json.contains("\"schema_version\" : 2"))
        let html = try LoadgenHTML.render(r)
        #expect(html.contains("<svg") || html.contains("createElementNS"))
        #expect(!html.contains("http://") || !html.contains("src=\"http"))
        #expect(!html.contains("<script src"))
    }
}
