import BottleFitTestSupport
import BottleFitCore
import BottleFitProtocol
import Foundation
import Testing
import ZeroMQ

/// The pipeline as it runs: real `bottlefit` processes on ipc:// endpoints, killed and abused mid-stream.
@Suite(.serialized, .blocking) struct PipelineTests {
    /// Heartbeat for every process: short, so losses show within a second.
    static let heartbeat = 200
    static let liveness = 3

    let models = TinyModels.files

    func broker(_ fleet: Fleet, name: String = "broker", extra: [String] = []) -> Running {
        fleet.start(name, ["broker", "--frontend", fleet.endpoint("front"), "--backend", fleet.endpoint("back"),
                           "--stats", fleet.endpoint("stats"), "--heartbeat-ms", "\(Self.heartbeat)",
                           "--liveness", "\(Self.liveness)"] + extra)
    }

    func worker(_ fleet: Fleet, id: String, extra: [String] = []) -> Running {
        fleet.start(id, ["worker", "--broker", fleet.endpoint("back"), "--id", id, "--model", "tiny=\(models.tail),\(models.full)",
                         "--heartbeat-ms", "\(Self.heartbeat)", "--liveness", "\(Self.liveness)"] + extra)
    }

    func camera(_ fleet: Fleet, id: String, rate: Int, extra: [String] = []) -> Running {
        fleet.start(id, ["device", "--broker", fleet.endpoint("front"), "--id", id, "--model", "tiny", "--head", models.head,
                         "--full", models.full, "--rate", "\(rate)", "--heartbeat-ms", "\(Self.heartbeat)",
                         "--liveness", "\(Self.liveness)"] + extra)
    }

    // MARK: 1. A worker killed mid-stream

    @Test func killingAWorkerMidStreamLosesNoFrame() throws {
        try #require(models.problem == nil, "\(models.problem ?? "")")
        let fleet = try Fleet()
        defer { fleet.stopAll() }
        let b = broker(fleet)
        #expect(b.waitForStderr("broker serving", timeout: 30) != nil, "\(b.stderr)")
        let w1 = worker(fleet, id: "w1")
        let w2 = worker(fleet, id: "w2")
        try #require(b.waitForStderr("worker joined", count: 2, timeout: 60) != nil, "\(fleet.transcript)")
        let cams = ["cam1", "cam2"].map { camera(fleet, id: $0, rate: 20, extra: ["--slo-ms", "1000"]) }
        for c in cams { try #require(c.waitForStderr("camera started", timeout: 60) != nil, "\(fleet.transcript)") }
        Thread.sleep(forTimeInterval: 1.5)

        // Freeze w1 so it surely holds frames, then kill it without a word.
        let beforeLoss = b.stderrCount
        w1.signal(SIGSTOP)
        Thread.sleep(forTimeInterval: 0.4)
        w1.signal(SIGKILL)
        #expect(w1.waitForExit(timeout: 10) == 128 + SIGKILL)
        let lost = b.waitForStderr(matching: /worker=w1 [^\n]*worker lost/, after: beforeLoss, timeout: 10)
        #expect(lost != nil, "the broker never declared w1 lost: \(b.stderr)")

        // Only w2 is left: a new camera's frames complete on the edge.
        let probe = camera(fleet, id: "cam3", rate: 20, extra: ["--frames", "20", "--slo-ms", "1000"])
        #expect(probe.waitForExit(timeout: 60) == 0, "\(probe.stderr)")
        let p = checkCamera(probe, "cam3")
        #expect(int(p, "completed_edge") > 0, "the surviving worker completed nothing: \(probe.stdout)")

        for c in cams { #expect(c.stop() == 0, "\(c.stderr.suffix(2000))") }
        var edge = 0
        for (c, id) in zip(cams, ["cam1", "cam2"]) {
            let s = checkCamera(c, id)
            edge += int(s, "completed_edge")
        }
        #expect(edge > 0)
        #expect(w2.stop() == 0, "\(w2.stderr)")
        #expect(int(summary(w2.stdout, prefix: "received="), "completed") > 0, "\(w2.stdout)")
        #expect(b.stop() == 0, "\(b.stderr)")
        let line = brokerLine(b)
        checkBrokerBalance(line)
        let requeued = int(summary(line, prefix: "received="), "requeued")
        #expect(requeued + brokerDropped(line, "worker_lost") >= 1, "w1's frames were neither requeued nor answered WORKER_LOST: \(line)")
        // The loss was logged with the frames it held.
        #expect(b.stderr.contains(/worker=w1 [^\n]*worker lost/), "\(b.stderr)")
    }
    // MARK: 2. The broker killed and restarted

    @Test func camerasGoLocalWhenTheBrokerDiesAndReturnWhenItComesBack() throws {
        try #require(models.problem == nil, "\(models.problem ?? "")")
        let t0 = Date()
        let fleet = try Fleet()
        defer { fleet.stopAll() }
        let b1 = broker(fleet, name: "broker-1")
        try #require(b1.waitForStderr("broker serving", timeout: 30) != nil, "\(b1.stderr)")
        let w = worker(fleet, id: "w1")
        try #require(b1.waitForStderr("worker joined", timeout: 60) != nil, "\(fleet.transcript)")
        let ids = ["cam1", "cam2"]
        let cams = ids.map { camera(fleet, id: $0, rate: 20, extra: ["--log-level", "debug"]) }
        for c in cams { try #require(c.waitForStderr("camera started", timeout: 60) != nil, "\(fleet.transcript)") }
        Thread.sleep(forTimeInterval: 1.5)

        // SIGKILL: no DISCONNECT, no answers; the cameras notice by silence (or a refused send).
        note("cameras running", since: t0)
        let offsets = cams.map(\.stderrCount)
        let killed = Date()
        b1.signal(SIGKILL)
        #expect(b1.waitForExit(timeout: 10) == 128 + SIGKILL)
        let silence = Double(Self.heartbeat * Self.liveness) / 1000
        for (c, offset) in zip(cams, offsets) {
            let local = c.waitForStderr(matching: /edge [a-z]+ -> dead/, after: offset, timeout: 10)
            #expect(local != nil, "\(c.name) did not leave the edge within 3 s: \(c.stderr(after: offset))")
            if let local {
                // Heartbeat × liveness is the bound (a refused send is sooner); a generous margin for a busy machine.
                #expect(local.timeIntervalSince(killed) <= silence + 7, "\(c.name) went local after \(local.timeIntervalSince(killed)) s")
            }
        }
        // Stay down long enough for local frames to pile up (20 fps each).
        Thread.sleep(forTimeInterval: max(0, 2.5 - Date().timeIntervalSince(killed)))

        note("down long enough", since: t0)
        let restarted = cams.map(\.stderrCount)
        let b2 = broker(fleet, name: "broker-2")
        try #require(b2.waitForStderr("broker serving", timeout: 30) != nil, "\(b2.stderr)")
        #expect(b2.waitForStderr("worker joined", timeout: 20) != nil, "the worker never rejoined: \(w.stderr.suffix(2000))")
        note("worker rejoined", since: t0)
        // A dead edge has no back-off: the camera's next HEARTBEAT (every second) is answered and
        // it is back (docs/device.md); 30 s is only a bound for a very busy machine. Healthy, or
        // congested when a loaded machine makes the first answers late: on the edge either way.
        for (c, offset) in zip(cams, restarted) {
            let back = c.waitForStderr(matching: /edge [a-z]+ -> (healthy|congested)/, after: offset, timeout: 30)
            #expect(back != nil, "\(c.name) never returned to the edge: \(c.stderr(after: offset).suffix(2000))")
            note("\(c.name) back", since: t0)
        }
        note("cameras back", since: t0)
        Thread.sleep(forTimeInterval: 1.5)

        var edge = 0, local = 0
        for (c, id) in zip(cams, ids) {
            #expect(c.stop() == 0, "\(c.stderr.suffix(2000))")
            let s = checkCamera(c, id)
            edge += int(s, "completed_edge")
            local += int(s, "completed_local")
            #expect(int(s, "completed_local") > 0, "\(id) computed nothing locally while the broker was down: \(c.stdout)")
        }
        note("cameras stopped", since: t0)
        #expect(w.stop() == 0, "\(w.stderr.suffix(2000))")
        #expect(b2.stop() == 0, "\(b2.stderr)")
        let line = brokerLine(b2)
        checkBrokerBalance(line)
        let afterRestart = int(summary(line, prefix: "received="), "completed")
        // The restarted broker completed frames: the cameras went back to split.
        #expect(afterRestart > 0, "nothing went to the edge after the restart: \(line)")
        // And the cameras completed more on the edge than that: the frames before the kill.
        #expect(edge > afterRestart, "edge \(edge), after the restart \(afterRestart)")
    }
    // MARK: 4. Garbage on every socket

    @Test func garbageOnEverySocketLeavesTheBrokerServing() throws {
        try #require(models.problem == nil, "\(models.problem ?? "")")
        let t0 = Date()
        let fleet = try Fleet()
        defer { fleet.stopAll() }
        let b = broker(fleet, extra: ["--log-level", "debug"])
        try #require(b.waitForStderr("broker serving", timeout: 30) != nil, "\(b.stderr)")
        let w = worker(fleet, id: "w1")
        try #require(b.waitForStderr("worker joined", timeout: 60) != nil, "\(fleet.transcript)")
        let cam = camera(fleet, id: "cam1", rate: 20, extra: ["--slo-ms", "1000"])
        try #require(cam.waitForStderr("camera started", timeout: 60) != nil, "\(fleet.transcript)")
        Thread.sleep(forTimeInterval: 0.5)
        note("fleet running", since: t0)

        let context = try ZMQContext()
        var sockets: [ZMQSocket] = []
        defer { for s in sockets { try? s.close() } }
        func dealer(_ endpoint: String) throws -> ZMQSocket {
            let s = try ZMQSocket(context, type: .dealer, linger: 0)
            try s.setOption(.sendTimeout, 1000)
            try s.connect(endpoint)
            sockets.append(s)
            return s
        }
        let front = try dealer(fleet.endpoint("front"))
        let back = try dealer(fleet.endpoint("back"))
        var rng = SeededGenerator(seed: 2026)
        var sent = 0, answers = 0, errors = 0
        let sendUntil = Date().addingTimeInterval(2.5)
        for round in 0..<200 where Date() < sendUntil {
            for body in Garbage.bodies(round: round, rng: &rng) {
                // Both layouts a peer may use, and some it may not.
                for socket in [front, back] {
                    for parts in [[[], body], [body], [[1], body], [[], body, []], [[], [0x41], [], body], [[], [], [], [], body]] {
                        if (try? socket.trySend(parts)) == true { sent += 1 }
                    }
                }
            }
            // A READY of another version (never registered), and an answer for a frame this peer never had.
            _ = try? back.trySend([[], MP.map([("v", .uint(7)), ("t", .str("ready")), ("w", .str("liar")),
                                                   ("ms", .array([.str("tiny")])), ("cr", .uint(1))]).bytes])
            _ = try? back.trySend([[], [0x41], [], Garbage.validFrame(camera: "cam1", sequence: 1)])
            while let reply = try front.tryReceive() {
                answers += 1
                if reply.count == 2, case .error = try? Message.decode(reply[1]) { errors += 1 }
            }
            while (try back.tryReceive()) != nil {}
            #expect(b.isRunning, "the broker died on garbage round \(round): \(b.stderr.suffix(3000))")
            if !b.isRunning { break }
            Thread.sleep(forTimeInterval: 0.02)
        }
        // One message over the protocol's size limit, on a socket of its own (libzmq drops that connection).
        let big = try dealer(fleet.endpoint("front"))
        _ = try? big.trySend([[], [UInt8](repeating: 0x42, count: 9 << 20)])
        Thread.sleep(forTimeInterval: 0.3)
        for _ in 0..<50 {
            guard let reply = try front.tryReceive() else { break }
            answers += 1
            if reply.count == 2, case .error = try? Message.decode(reply[1]) { errors += 1 }
        }
        note("garbage sent: \(sent) messages, \(answers) answers", since: t0)
        #expect(sent > 1000, "too little garbage went out: \(sent)")
        #expect(errors > 0, "the broker answered no garbage with an ERROR (\(answers) answers)")
        try #require(b.isRunning, "the broker died: \(b.stderr.suffix(3000))")

        // After all that, a new well-behaved camera still completes its frames on the edge.
        let probe = camera(fleet, id: "cam2", rate: 20, extra: ["--frames", "20", "--slo-ms", "1000"])
        #expect(probe.waitForExit(timeout: 60) == 0, "\(probe.stderr)")
        let p = checkCamera(probe, "cam2")
        #expect(int(p, "completed_edge") >= 10, "edge service suffered from the garbage: \(probe.stdout)")
        #expect(cam.stop() == 0, "\(cam.stderr.suffix(2000))")
        let s = checkCamera(cam, "cam1")
        #expect(int(s, "completed_edge") > 0, "\(cam.stdout)")
        #expect(w.stop() == 0, "\(w.stderr.suffix(2000))")
        #expect(b.stop() == 0, "the broker did not exit 0 on SIGTERM: \(b.stderr.suffix(3000))")
        let line = brokerLine(b)
        checkBrokerBalance(line)
        #expect(brokerDropped(line, "bad_request") > 0, "\(line)")
        #expect(line.contains("discarded[") && !line.contains("discarded[none]"), "\(line)")
        note("done", since: t0)
    }
    // MARK: 3. Overload with the controller

    @Test func overloadSendsCamerasLocalAndKeepsTheQueueBounded() throws {
        try #require(models.problem == nil, "\(models.problem ?? "")")
        let t0 = Date()
        let fleet = try Fleet()
        defer { fleet.stopAll() }
        let capacity = 4
        let b = broker(fleet, extra: ["--queue-capacity", "\(capacity)"])
        try #require(b.waitForStderr("broker serving", timeout: 30) != nil, "\(b.stderr)")
        let w = fleet.start("w1", ["worker", "--broker", fleet.endpoint("back"), "--id", "w1", "--model", "tiny=\(models.slowTail)",
                                   "--credit", "1", "--max-batch", "1", "--heartbeat-ms", "\(Self.heartbeat)"])
        try #require(b.waitForStderr("worker joined", timeout: 60) != nil, "\(fleet.transcript)")
        let ctl = fleet.start("controller", ["controller", "--stats", fleet.endpoint("stats"), "--publish", fleet.endpoint("directives"),
                                             "--slo-ms", "20", "--raise-step", "1.0", "--lower-step", "0.5", "--dwell-ms", "1000"])
        try #require(ctl.waitForStderr("controller up", timeout: 30) != nil, "\(ctl.stderr)")

        let context = try ZMQContext()
        let sub = try ZMQSocket(context, type: .sub, linger: 0)
        defer { try? sub.close() }
        try sub.setOption(.subscribe, Array("stats".utf8))
        try sub.connect(fleet.endpoint("stats"))
        var statsSeen = 0, maxDepth = 0, maxP95 = 0.0
        func drainStats() throws {
            for _ in 0..<1000 {
                guard let parts = try sub.tryReceive() else { return }
                guard parts.count == 2, case .stats(let s)? = try? Message.decode(parts[1]) else {
                    Issue.record("undecodable STATS: \(parts.map(\.count))")
                    continue
                }
                statsSeen += 1
                maxDepth = max(maxDepth, s.queueDepth)
                maxP95 = max(maxP95, s.queueTimeP95)
            }
        }

        let ids = ["cam1", "cam2", "cam3"]
        let cams = ids.map { camera(fleet, id: $0, rate: 30, extra: ["--directives", fleet.endpoint("directives")]) }
        for c in cams { try #require(c.waitForStderr("camera started", timeout: 60) != nil, "\(fleet.transcript)") }
        note("overload on", since: t0)
        let deadline = Date().addingTimeInterval(25)
        var raised = false, obeyed = false
        for _ in 0..<2000 where Date() < deadline {
            try drainStats()
            raised = raised || ctl.stderr.contains("raise local share")
            obeyed = obeyed || cams.contains { $0.stderr.contains("directive obeyed") }
            if raised && obeyed { break }
            Thread.sleep(forTimeInterval: 0.02)
        }
        note("raised \(raised), obeyed \(obeyed)", since: t0)
        #expect(raised, "the controller never raised the local fraction: \(ctl.stderr.suffix(3000))")
        #expect(obeyed, "no camera obeyed a directive: \(cams.map { $0.stderr.suffix(1000) })")
        // Keep the pressure on a little longer, still watching the queue.
        let hold = Date().addingTimeInterval(1)
        for _ in 0..<200 where Date() < hold { try drainStats(); Thread.sleep(forTimeInterval: 0.02) }

        for c in cams { #expect(c.stop() == 0, "\(c.stderr.suffix(2000))") }
        var local = 0
        for (c, id) in zip(cams, ids) { local += int(checkCamera(c, id), "completed_local") }
        #expect(local > 0)
        try drainStats()
        #expect(ctl.stop() == 0, "\(ctl.stderr.suffix(2000))")
        let decisions = ctl.stdout
        #expect(decisions.contains(/fraction (0\.[1-9]|1\.0)/) || decisions.contains(/raises=[1-9]/), "\(decisions)")
        #expect(!decisions.contains("raises=0"), "\(decisions)")
        #expect(w.stop() == 0, "\(w.stderr.suffix(2000))")
        #expect(b.stop() == 0, "\(b.stderr.suffix(2000))")
        let line = brokerLine(b)
        checkBrokerBalance(line)
        // The queue never went over its bound (no worker was lost, so no requeue may exceed it).
        #expect(statsSeen >= 4, "too few STATS seen: \(statsSeen)")
        #expect(maxDepth <= capacity, "queue depth \(maxDepth) over capacity \(capacity)")
        // Not vacuous: the edge really was overloaded.
        #expect(maxP95 > 20 || brokerDropped(line, "busy") + brokerDropped(line, "expired") > 0,
                "no sign of overload: p95 max \(maxP95), \(line)")
        note("done: \(statsSeen) STATS, max depth \(maxDepth), max p95 \(maxP95)", since: t0)
    }
}
