import Foundation
import Testing
@testable import BottleFitLoadgen

/// Issue 10's fairness measure: per-camera edge share over 10 s windows after 10 s, against the fleet mean.
@Suite struct FairnessTests {
    /// Feeds `seconds` one-second samples where camera c gets `edgePerSecond[c]` of its 10 frames/s answered.
    func run(_ edgePerSecond: [Int], seconds: Int, eligible: [Bool]? = nil) -> FairnessWindows {
        var f = FairnessWindows(sampleSeconds: 1)
        for s in 1...seconds {
            _ = f.sample(
                t: Double(s), offered: edgePerSecond.map { _ in 10 * s }, edge: edgePerSecond.map { $0 * s },
                eligible: eligible ?? edgePerSecond.map { _ in true })
        }
        return f
    }

    @Test func noWindowBeforeWarmUpPlusOneWindow() {
        #expect(run([5, 5], seconds: 19).windows == 0)
        let f = run([5, 5], seconds: 20)
        #expect(f.windows == 1 && f.minRatio == 1 && f.maxRatio == 1)
    }

    @Test func aStarvedCameraIsSeenAndNamed() {
        // Shares 0.8, 0.8, 0.8, 0: mean 0.6, ratios 1.33 and 0.
        let f = run([8, 8, 8, 0], seconds: 30)
        #expect(f.windows == 11)
        #expect(f.minRatio == 0 && abs((f.maxRatio ?? 0) - 0.8 / 0.6) < 1e-9)
        #expect(f.worst?.camera == 3)
    }

    @Test func localCamerasAreLeftOut() {
        let f = run([8, 8, 0], seconds: 25, eligible: [true, true, false])
        #expect(f.minRatio == 1 && f.maxRatio == 1)
    }

    @Test func aWindowWithNothingServedIsSkipped() {
        #expect(run([0, 0], seconds: 30).windows == 0)
    }

    @Test func theEngineReportsFairnessAndThresholdsReadIt() throws {
        // 4 cameras on the sink for 25 s: every frame answered, so every share is 1.
        let plan = LoadgenPlan(groups: [group(cameras: 4, rate: 5)], durationSeconds: 25, seed: 1)
        var (report, _) = try runVirtual(plan)
        let fair = try #require(report.fairness)
        #expect(fair.windows > 0 && fair.minRatio == 1 && fair.maxRatio == 1 && fair.fair == true)
        #expect(report.cameras?.count == 4 && report.cameras?.allSatisfy { $0.edgeShare == 1 } == true)
        #expect(report.timeseries.contains { $0.fairnessMin != nil })
        report.thresholds = try ["fairness_min>=0.5", "fairness_max<=2", "fairness_min<0.5"].map { try Threshold(parsing: $0).evaluate(report) }
        #expect(report.thresholds.map(\.passed) == [true, true, false])
        #expect(LoadgenTable.render(report).contains("fairness edge share / fleet mean"))
        #expect(try LoadgenHTML.render(report).contains("Fairness (issue 10)"))
    }
}

/// Offload payloads of source `textured`: photo-like frames whose JPEGs are as large as photographs'.
@Suite struct TexturedFramesTests {
    @Test func texturedJPEGsAreLargerThanFlatSyntheticOnesAndDistinct() throws {
        var textured = group(cameras: 1)
        textured.textured = true
        let flat = try LoadgenEngine.jpegs(group(cameras: 1), seed: 1)
        let photo = try LoadgenEngine.jpegs(textured, seed: 1)
        let mean = { (files: [[UInt8]]) in files.reduce(0) { $0 + $1.count } / files.count }
        // A 224x224 photograph at quality 90 is typically 15-30 KB; the flat frames about 8 KB.
        #expect(mean(photo) > mean(flat) + 4000 && mean(photo) > 12_000)
        #expect(Set(photo).count == photo.count)
    }
}
