import BottleFitLogging
import Foundation
import Logging
import Testing

@Suite struct LogMergerTests {
    static let clock: @Sendable () -> LogTimestamp = { LogTimestamp(millisecondsSinceEpoch: 0) }
    let json = LogMerger(format: .json, clock: Self.clock)
    let text = LogMerger(format: .text, clock: Self.clock)
    let childJSON = #"{"ts":"2026-12-03T15:26:20.123Z","level":"notice","role":"worker","label":"bottlefit.worker","source":"BottleFitWorker","msg":"worker ready","metadata":{"models":"tiny","worker":"w1"}}"#
    let childText = "2026-12-03T15:26:20+0000 warning bottlefit.device: camera=c1 [BottleFitDevice] edge healthy -> congested"

    @Test func jsonChildLinesKeepTheirKeysAndTakeTheProcessAsRole() throws {
        let merged = json.merge(childJSON, from: "worker-1", stream: .standardError)
        #expect(merged.level == .notice)
        #expect(merged.text == childJSON.replacingOccurrences(of: #""role":"worker""#, with: #""role":"worker-1""#))
    }

    @Test func textChildLinesBecomeJSON() throws {
        let merged = json.merge(childText, from: "camera-3", stream: .standardError)
        #expect(merged.level == .warning)
        let o = try object(merged.text)
        #expect(o["role"] as? String == "camera-3")
        #expect(o["level"] as? String == "warning")
        #expect(o["label"] as? String == "bottlefit.device")
        #expect(o["ts"] as? String == "2026-12-03T15:26:20+0000")
        #expect(o["msg"] as? String == "camera=c1 [BottleFitDevice] edge healthy -> congested")
    }

    @Test func plainLinesBecomeJSONByTheirStream() throws {
        let summary = json.merge("camera=c1 mode=split offered=10 \"quoted\"", from: "c1", stream: .standardOutput)
        #expect(summary.level == nil)
        let o = try object(summary.text)
        #expect(o["level"] as? String == "info")
        #expect(o["label"] as? String == "stdout")
        #expect(o["msg"] as? String == "camera=c1 mode=split offered=10 \"quoted\"")
        #expect(o["ts"] as? String == "1970-01-01T00:00:00.000Z")
        let failure = try object(json.merge("Error: worker: no file bad.onnx", from: "worker-1", stream: .standardError).text)
        #expect(failure["level"] as? String == "error")
        #expect(failure["label"] as? String == "stderr")
        #expect(Set(failure.keys) == ["ts", "level", "role", "label", "source", "msg", "metadata"])
    }

    @Test func textModePrefixesTextAndRendersJSONAsText() {
        #expect(text.merge(childText, from: "camera-3", stream: .standardError) == MergedLine(text: "[camera-3] " + childText, level: .warning))
        #expect(text.merge("camera=c1 offered=3", from: "c1", stream: .standardOutput) == MergedLine(text: "[c1] camera=c1 offered=3", level: nil))
        let rendered = text.merge(childJSON, from: "worker-1", stream: .standardError)
        #expect(rendered.text == "[worker-1] 2026-12-03T15:26:20.123Z notice bottlefit.worker: models=tiny worker=w1 [BottleFitWorker] worker ready")
        #expect(rendered.level == .notice)
    }

    @Test func extraKeysSurviveAndBrokenJSONIsAPlainLine() throws {
        let extra = #"{"level":"info","msg":"hi","zeta":[1,true],"alpha":{"b":null}}"#
        let o = try object(json.merge(extra, from: "x", stream: .standardError).text)
        #expect(o["alpha"] != nil && o["zeta"] != nil && o["metadata"] is [String: Any])
        let broken = #"{"level":"info","msg":"cut"#
        let wrapped = try object(json.merge(broken, from: "x", stream: .standardError).text)
        #expect(wrapped["msg"] as? String == broken)
        #expect(wrapped["level"] as? String == "error")
    }

    @Test func theSupervisorsOwnLines() throws {
        #expect(text.own("started 4 processes") == "[up] started 4 processes")
        let o = try object(json.own("did not stop", role: "loadgen", label: "bottlefit.loadgen", level: .warning))
        #expect(o["role"] as? String == "loadgen" && o["level"] as? String == "warning" && o["msg"] as? String == "did not stop")
    }
}
