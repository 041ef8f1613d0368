import BottleFitProtocol
import Foundation
import Testing
import ZeroMQ
import BottleFitTestSupport

/// `bottlefit up` scaled while it runs under load: SIGUSR1 adds a worker that takes frames at once,
/// SIGUSR2 drains it with no frame lost, and every camera still accounts for every frame.
@Suite(.serialized, .blocking) struct FleetScalingTests {
    let models = TinyModels.files

    /// A line of `up`'s output (either stream) holding `key=value` tokens after `marker`, as fields.
    func fields(_ text: String, after marker: String) -> [String: String]? {
        guard let line = text.split(separator: "\n").last(where: { $0.contains(marker) }),
              let range = line.range(of: marker) else { return nil }
        return summary(String(line[range.lowerBound...]), prefix: marker)
    }

    @Test func workersAddedAndDrainedUnderLoadTakeFramesAndLoseNone() throws {
        try #require(models.problem == nil, "\(models.problem ?? "")")
        let t0 = Date()
        let fleet = try Fleet()
        defer { fleet.stopAll() }
        // One slow worker, two cameras that offer more than it computes: the queue holds work for a second worker.
        let topology = """
            broker:
              frontend: \(fleet.endpoint("front"))
              backend: \(fleet.endpoint("back"))
              stats: \(fleet.endpoint("stats"))
              queue_capacity: 64
            workers:
              count: 1
              models:
                tiny:
                  tail: \(models.slowTail)
              credit: 2
              max_batch: 1
            cameras:
              count: 2
              model: tiny
              head: \(models.head)
              full: \(models.full)
              rate: 25
              slo_ms: 5000
            """
        let path = fleet.dir.appendingPathComponent("fleet.yaml").path
        try topology.write(toFile: path, atomically: true, encoding: .utf8)
        let pidFile = fleet.dir.appendingPathComponent("up.pid").path
        let up = fleet.start("up", ["up", path, "--pid-file", pidFile, "--grace", "30"])
        try #require(up.waitForStderr("worker joined", timeout: 120) != nil, "\(up.stdout)\n\(up.stderr.suffix(3000))")
        try #require(up.waitForStderr("camera started", count: 2, timeout: 120) != nil, "\(up.stdout)\n\(up.stderr.suffix(3000))")
        #expect((try? String(contentsOfFile: pidFile, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) == "\(up.pid)")

        let context = try ZMQContext()
        let sub = try ZMQSocket(context, type: .sub, linger: 0)
        defer { try? sub.close() }
        try sub.setOption(.subscribe, Array("stats".utf8))
        try sub.connect(fleet.endpoint("stats"))
        /// Reads the STATS that have arrived; true once one shows `worker` holding frames.
        func workerBusy(_ worker: String) throws -> Bool {
            var busy = false
            for _ in 0..<1000 {
                guard let parts = try sub.tryReceive() else { break }
                if parts.count == 2, case .stats(let s)? = try? Message.decode(parts[1]),
                   s.workers.contains(where: { $0.id == worker && $0.inFlight > 0 }) { busy = true }
            }
            return busy
        }

        // SIGUSR1: one more worker, a copy of the topology's, which joins and is given frames.
        up.signal(SIGUSR1)
        #expect(up.waitForStdout("[up] added worker-2", timeout: 30) != nil, "\(up.stdout)")
        try #require(up.waitForStderr("worker joined", count: 2, timeout: 120) != nil, "\(up.stdout)\n\(up.stderr.suffix(3000))")
        note("worker-2 joined", since: t0)
        var took = false
        let deadline = Date().addingTimeInterval(60)
        while !took, Date() < deadline, up.isRunning {
            took = try workerBusy("worker-2")
            Thread.sleep(forTimeInterval: 0.02)
        }
        #expect(took, "the broker never gave worker-2 a frame: \(up.stderr.suffix(3000))")
        note("worker-2 holds frames", since: t0)

        // SIGUSR2: the newest worker drains (answers what it holds, DISCONNECT, exit 0) while the load goes on.
        up.signal(SIGUSR2)
        #expect(up.waitForStdout("[up] worker-2 drained: exit 0", timeout: 60) != nil, "\(up.stdout)\n\(up.stderr.suffix(3000))")
        let drained = fields(up.stdout, after: "received=")
        #expect(int(drained, "completed") > 0, "worker-2 completed nothing: \(up.stdout)")
        #expect(int(drained, "received") == int(drained, "completed"), "worker-2 did not answer every frame it took: \(up.stdout)")
        #expect(int(drained, "abandoned") == 0, "\(up.stdout)")
        // The last worker stays.
        up.signal(SIGUSR2)
        #expect(up.waitForStdout("[up] not draining the last worker", timeout: 30) != nil, "\(up.stdout)")
        #expect(up.isRunning, "\(up.stdout)")

        // Stop: the cameras print their summaries, the broker its counters.
        #expect(up.stop(grace: 90) == 0, "\(up.stdout)\n\(up.stderr.suffix(3000))")
        #expect(up.stdout.contains("workers added while running: 1, drained: 1"), "\(up.stdout)")
        for camera in ["camera-1", "camera-2"] {
            let s = fields(up.stdout, after: "camera=\(camera) ")
            let offered = int(s, "offered"), edge = int(s, "completed_edge"), local = int(s, "completed_local"), dropped = int(s, "dropped")
            #expect(offered > 0 && edge > 0, "\(camera): \(String(describing: s))")
            #expect(offered == edge + local + dropped, "\(camera) does not account for every frame: \(up.stdout)")
            let line = up.stdout.split(separator: "\n").last { $0.contains("camera=\(camera) ") } ?? ""
            #expect(!line.contains("worker_lost"), "\(camera) lost frames to a worker: \(line)")
        }
        let brokerLine = up.stdout.split(separator: "\n").last { $0.hasPrefix("[broker] received=") }.map { String($0.dropFirst("[broker] ".count)) } ?? ""
        checkBrokerBalance(brokerLine)
        #expect(brokerDropped(brokerLine, "worker_lost") == 0, "\(brokerLine)")
        #expect(!FileManager.default.fileExists(atPath: pidFile), "--pid-file was left behind")
    }

    /// received = completed + Σ dropped, nothing left queued or in flight.
    func checkBrokerBalance(_ line: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let f = summary(line, prefix: "received=")
        #expect(f != nil, "no broker counters", sourceLocation: sourceLocation)
        #expect(int(f, "queued") == 0 && int(f, "in_flight") == 0, "\(line)", sourceLocation: sourceLocation)
        #expect(int(f, "received") == int(f, "completed") + brokerDroppedTotal(line), "broker balance: \(line)", sourceLocation: sourceLocation)
    }
}

extension Running {
    /// Polls (bounded in time) until `text` appears in stdout; the time it was seen, or nil.
    func waitForStdout(_ text: String, timeout: Double) -> Date? {
        let deadline = Date().addingTimeInterval(timeout)
        repeat {
            if stdout.contains(text) { return Date() }
            if !isRunning { break }
            Thread.sleep(forTimeInterval: 0.02)
        } while Date() < deadline
        return stdout.contains(text) ? Date() : nil
    }
}
