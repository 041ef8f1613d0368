import Foundation
import Testing
import BottleFitTestSupport

/// The camera's edge states with real processes (docs/device.md): a worker joining late, a hung
/// worker, and a full edge shared by several cameras. Each waits on log lines with generous
/// bounds, so a busy machine makes them slower, not red.
@Suite(.serialized, .blocking) struct EdgeStateTests {
    static let heartbeat = 200
    static let liveness = 3
    let models = TinyModels.files

    func broker(_ fleet: Fleet, extra: [String] = []) -> Running {
        fleet.start("broker", ["broker", "--frontend", fleet.endpoint("front"), "--backend", fleet.endpoint("back"),
                               "--stats", fleet.endpoint("stats"), "--heartbeat-ms", "\(Self.heartbeat)",
                               "--liveness", "\(Self.liveness)"] + extra)
    }

    func worker(_ fleet: Fleet, id: String, tail: String? = nil, extra: [String] = []) -> Running {
        fleet.start(id, ["worker", "--broker", fleet.endpoint("back"), "--id", id, "--model", "tiny=\(tail ?? models.tail),\(models.full)",
                         "--heartbeat-ms", "\(Self.heartbeat)", "--liveness", "\(Self.liveness)"] + extra)
    }

    func camera(_ fleet: Fleet, id: String, rate: Int, full: Bool = true, extra: [String] = []) -> Running {
        fleet.start(id, ["device", "--broker", fleet.endpoint("front"), "--id", id, "--model", "tiny", "--head", models.head]
                    + (full ? ["--full", models.full] : [])
                    + ["--rate", "\(rate)", "--heartbeat-ms", "\(Self.heartbeat)", "--liveness", "\(Self.liveness)"] + extra)
    }

    /// A broker and one worker whose liveness is long enough that a stopped worker is never
    /// declared lost: a hung or slow worker, not a dead one. Returns once the worker joined.
    func patientEdge(_ fleet: Fleet, brokerExtra: [String] = [], workerExtra: [String] = []) throws -> (broker: Running, worker: Running) {
        let b = broker(fleet, extra: ["--liveness", "100"] + brokerExtra)
        try #require(b.waitForStderr("broker serving", timeout: 30) != nil, "\(b.stderr)")
        let w = worker(fleet, id: "w1", extra: ["--liveness", "100"] + workerExtra)
        try #require(b.waitForStderr("worker joined", timeout: 60) != nil, "\(fleet.transcript)")
        return (b, w)
    }

    // MARK: Start order

    /// Cameras started before any worker: with the whole model they lose nothing (computed
    /// locally, probing every 250 ms); without it they drop frames as `no_worker`, never
    /// `edge_down_no_local`. Both reach the edge soon after the first READY. Liveness is 15
    /// heartbeats here (3 s), not 3: this test is about start order, and beside stress-ng a
    /// process stalled for 0.6 s made a camera declare the broker dead after the worker
    /// joined, and drop frames as `edge_down_no_local` then.
    @Test func camerasStartedBeforeTheWorkersReachTheEdgeWhenOneJoins() throws {
        try #require(models.problem == nil, "\(models.problem ?? "")")
        let t0 = Date()
        let fleet = try Fleet()
        defer { fleet.stopAll() }
        let patient = ["--liveness", "15"]
        let b = broker(fleet, extra: patient)
        try #require(b.waitForStderr("broker serving", timeout: 30) != nil, "\(b.stderr)")
        let withFull = camera(fleet, id: "cam-full", rate: 20, extra: patient)
        let edgeOnly = camera(fleet, id: "cam-edge", rate: 20, full: false, extra: patient)
        for c in [withFull, edgeOnly] {
            #expect(c.waitForStderr("edge healthy -> starting", timeout: 60) != nil, "\(c.name) never saw 'no worker yet': \(c.stderr.suffix(2000))")
        }
        Thread.sleep(forTimeInterval: 1)  // frames pile up while no worker serves the model
        note("cameras starting", since: t0)
        let offsets = [withFull, edgeOnly].map(\.stderrCount)
        let w = worker(fleet, id: "w1", extra: patient)
        let joined = try #require(b.waitForStderr("worker joined", timeout: 60), "\(fleet.transcript)")
        for (c, offset) in zip([withFull, edgeOnly], offsets) {
            // Healthy, or congested when a loaded machine makes the first answers late: on the edge either way.
            let back = c.waitForStderr(matching: /edge starting -> (healthy|congested)/, after: offset, timeout: 60)
            #expect(back != nil, "\(c.name) never reached the edge: \(c.stderr(after: offset).suffix(2000))")
            if let back { note("\(c.name) on the edge \(String(format: "%.2f", back.timeIntervalSince(joined))) s after READY", since: t0) }
        }
        Thread.sleep(forTimeInterval: 1)
        #expect(withFull.stop() == 0)
        #expect(edgeOnly.stop() == 0)
        let f = checkCamera(withFull, "cam-full")
        #expect(int(f, "dropped") == 0, "a camera with the whole model lost frames: \(withFull.stdout)")
        #expect(int(f, "completed_local") > 0 && int(f, "completed_edge") > 0, "\(withFull.stdout) \(withFull.stderr.suffix(3000))")
        let e = checkCamera(edgeOnly, "cam-edge")
        #expect(int(e, "completed_edge") > 0, "\(edgeOnly.stdout)")
        #expect(edgeOnly.stdout.contains("no_worker="), "\(edgeOnly.stdout)")
        #expect(!edgeOnly.stdout.contains("edge_down_no_local="), "\(edgeOnly.stdout)")
        #expect(w.stop() == 0)
        #expect(b.stop() == 0)
    }

    // MARK: A hung worker

    /// A SIGSTOPped worker holds frames: the camera stops waiting at each frame's edge deadline
    /// and computes it locally (never a `timeout` drop with the whole model), stays congested but
    /// probing (frames keep reaching the broker), and is back on the edge after SIGCONT.
    @Test func aHungWorkerCostsNoFrameAndTheCameraReturns() throws {
        try #require(models.problem == nil, "\(models.problem ?? "")")
        let t0 = Date()
        let fleet = try Fleet()
        defer { fleet.stopAll() }
        let (b, w) = try patientEdge(fleet, brokerExtra: ["--metrics", "127.0.0.1:0"], workerExtra: ["--metrics", "127.0.0.1:0"])
        let workerPort = try #require(Scrape.port(of: w), "\(w.stderr)")
        let brokerPort = try #require(Scrape.port(of: b), "\(b.stderr)")
        func completed() -> Double { Scrape.metrics(port: workerPort, "worker")?.value("bottlefit_worker_frames_completed_total", ["worker": "w1"]) ?? -1 }
        func received() -> Double { Scrape.metrics(port: brokerPort, "broker")?.value("bottlefit_broker_requests_received_total") ?? -1 }
        // A generous SLO: on a busy machine answers are not late before the worker stops.
        let cam = camera(fleet, id: "cam1", rate: 20, extra: ["--slo-ms", "1000"])
        try #require(cam.waitForStderr("camera started", timeout: 60) != nil, "\(cam.stderr)")
        Thread.sleep(forTimeInterval: 1)
        // Start from a healthy edge: a busy machine may have made a first answer late.
        if let last = cam.stderr.matches(of: /edge [a-z]+ -> ([a-z]+)/).last, last.output.1 != "healthy" {
            let since = cam.stderrCount
            _ = cam.waitForStderr(matching: /edge [a-z]+ -> healthy/, after: since, timeout: 30)
        }
        let offset = cam.stderrCount
        w.signal(SIGSTOP)
        note("worker stopped", since: t0)
        // Congested, possibly by way of dead: on a busy machine the broker's answers to the
        // camera's probes can come late enough to be silence for a moment.
        #expect(cam.waitForStderr(matching: /edge [a-z]+ -> congested/, after: offset, timeout: 30) != nil,
                "\(cam.stderr(after: offset).suffix(2000))")
        // Congested, not given up: the camera's frames (its share, and probes at least once a
        // second) keep reaching the broker while the worker is stopped. Five more, waited for.
        let atCongested = received()
        let probing = Date().addingTimeInterval(30)
        var sinceCongested = 0.0
        while sinceCongested < 5, Date() < probing {
            Thread.sleep(forTimeInterval: 0.2)
            sinceCongested = received() - atCongested
        }
        #expect(sinceCongested >= 5, "frames stopped reaching the broker while the worker was stopped (\(sinceCongested) in 30 s)")
        let resumed = cam.stderrCount
        w.signal(SIGCONT)
        let atResume = completed()
        note("worker resumed (\(atResume) frames completed before)", since: t0)
        // Back on the edge: the worker completes the camera's frames again, and the camera is on
        // the edge (healthy, or congested while a loaded machine still makes answers late: it
        // sends its share and probes; never dead or starting). 30 s only bounds a very busy machine.
        let deadline = Date().addingTimeInterval(30)
        var now = atResume
        while now <= atResume, Date() < deadline {
            Thread.sleep(forTimeInterval: 0.2)
            now = completed()
        }
        #expect(now > atResume, "the worker completed nothing after SIGCONT (\(atResume) -> \(now))")
        #expect(onEdge(cam, after: resumed, timeout: 30) != nil, "the camera never returned to the edge: \(cam.stderr(after: resumed).suffix(2000))")
        Thread.sleep(forTimeInterval: 1)
        #expect(cam.stop() == 0)
        let s = checkCamera(cam, "cam1")
        #expect(int(s, "dropped") == 0, "frames were lost to a hung worker: \(cam.stdout)")
        #expect(int(s, "fell_back") > 0, "\(cam.stdout)")
        #expect(w.stop() == 0)
        #expect(b.stop() == 0)
    }

    // MARK: A slow edge

    /// A slow edge: the worker gets a sixth of the CPU time it asks for (SIGSTOP 250 ms, SIGCONT
    /// 50 ms, for 9 s), so its answers come late or the broker expires frames it cannot serve in
    /// time. The camera lowers its share and keeps sending (frames reach the broker in every 3 s
    /// window: the edge never idles while the camera computes locally), loses nothing, never
    /// takes the edge for a dead one, and is back to a calm edge once the worker runs freely.
    @Test func aSlowEdgeKeepsItsShareAndTheCameraReturns() throws {
        try #require(models.problem == nil, "\(models.problem ?? "")")
        let t0 = Date()
        let fleet = try Fleet()
        defer { fleet.stopAll() }
        let (b, w) = try patientEdge(fleet, brokerExtra: ["--metrics", "127.0.0.1:0"], workerExtra: ["--metrics", "127.0.0.1:0"])
        let workerPort = try #require(Scrape.port(of: w), "\(w.stderr)")
        let brokerPort = try #require(Scrape.port(of: b), "\(b.stderr)")
        // The camera's own liveness is long too: on an overloaded machine a heartbeat answer
        // 600 ms late must not read as a dead broker; this test is about a slow worker.
        let cam = camera(fleet, id: "cam1", rate: 20, extra: ["--slo-ms", "300", "--liveness", "30"])
        try #require(cam.waitForStderr("camera started", timeout: 60) != nil, "\(cam.stderr)")
        let offset = cam.stderrCount
        var completed: [Double] = []
        var received: [Double] = []
        func scrape() {
            if let m = Scrape.metrics(port: workerPort, "worker") {
                completed.append(m.value("bottlefit_worker_frames_completed_total", ["worker": "w1"]) ?? -1)
            }
            if let m = Scrape.metrics(port: brokerPort, "broker") {
                received.append(m.value("bottlefit_broker_requests_received_total") ?? -1)
            }
        }
        scrape()
        note("worker slowed", since: t0)
        for step in 1...30 {  // 9 s: a stopped worker a sixth of the time running
            w.signal(SIGSTOP)
            Thread.sleep(forTimeInterval: 0.25)
            w.signal(SIGCONT)
            Thread.sleep(forTimeInterval: 0.05)
            if step % 10 == 0 { scrape() }  // about every 3 s
        }
        note("worker runs freely again; at each scrape: completed \(completed), received by the broker \(received)", since: t0)
        #expect(cam.waitForStderr(matching: /edge [a-z]+ -> congested/, after: offset, timeout: 30) != nil,
                "a slow edge never made the camera congested: \(cam.stderr(after: offset).suffix(2000))")
        #expect(completed.count == 4 && received.count == 4, "\(completed) \(received)")
        // The edge never idled for want of frames: the camera kept sending its share in every
        // 3 s window of the slow phase, and the worker completed frames over it. (Not in every
        // window: beside other work a process running 50 ms in every 300 can go 3 s without
        // being scheduled in its slots.)
        #expect(zip(received, received.dropFirst()).allSatisfy { $0 >= 0 && $1 > $0 }, "the camera stopped sending to a slow edge: \(received)")
        #expect((completed.first ?? -1) >= 0 && (completed.last ?? -1) > (completed.first ?? -1), "the slow worker completed nothing: \(completed)")
        // Back: the worker completes frames again and the camera is on the edge (healthy, or
        // congested while a loaded machine still makes answers late; never dead or starting).
        let freed = cam.stderrCount
        let atFree = completed.last ?? -1
        var after = atFree
        let deadline = Date().addingTimeInterval(60)
        while after <= atFree, Date() < deadline {
            Thread.sleep(forTimeInterval: 0.2)
            after = Scrape.metrics(port: workerPort, "worker")?.value("bottlefit_worker_frames_completed_total", ["worker": "w1"]) ?? -1
        }
        #expect(after > atFree, "the worker completed nothing once it ran freely (\(atFree) -> \(after))")
        #expect(onEdge(cam, after: freed, timeout: 60) != nil, "the camera did not return to the edge: \(cam.stderr(after: freed).suffix(2000))")
        if let back = cam.waitForStderr(matching: /edge [a-z]+ -> healthy/, after: freed, timeout: 15) {
            note("camera healthy \(String(format: "%.1f", back.timeIntervalSince(t0))) s in", since: t0)
        }
        #expect(cam.stop() == 0)
        let s = checkCamera(cam, "cam1")
        #expect(int(s, "dropped") == 0, "a slow edge cost frames: \(cam.stdout)")
        #expect(int(s, "completed_edge") > 0 && int(s, "completed_local") + int(s, "fell_back") > 0, "\(cam.stdout)")
        #expect(!cam.stderr.contains("-> dead"), "a slow edge was taken for a dead one: \(cam.stderr.suffix(1500))")
        #expect(w.stop() == 0)
        #expect(b.stop() == 0)
    }

    // MARK: A head the edge's tail does not take

    /// A camera whose head writes a bottleneck the workers' tail does not take (C = 3 against
    /// C = 4): every edge frame is refused as BAD_REQUEST. The camera says so in a warning (which
    /// `bottlefit up` stops the fleet on), and still computes every frame locally.
    @Test func framesTheEdgeRefusesAreWarnedAboutNotSilentlyCounted() throws {
        try #require(models.problem == nil, "\(models.problem ?? "")")
        let dir = URL(fileURLWithPath: "/tmp/bfp-c3-\(getpid())-\(UUID().uuidString.prefix(6))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        for part in ["head", "full"] {
            let p = Running(name: "model-c3-\(part)", arguments: [
                "model", "create", "bottlefit-resnet50", "--bottleneck", "3", "--width", "4", "--classes", "10",
                "--image-size", "64", "--out", dir.appendingPathComponent("\(part).onnx").path, "--part", part,
            ])
            try #require(p.waitForExit(timeout: 120) == 0, "\(p.stderr)")
        }
        let fleet = try Fleet()
        defer { fleet.stopAll() }
        let b = broker(fleet)
        try #require(b.waitForStderr("broker serving", timeout: 30) != nil, "\(b.stderr)")
        let w = worker(fleet, id: "w1")
        try #require(b.waitForStderr("worker joined", timeout: 60) != nil, "\(fleet.transcript)")
        let cam = fleet.start("cam1", ["device", "--broker", fleet.endpoint("front"), "--id", "cam1", "--model", "tiny",
                                       "--head", dir.appendingPathComponent("head.onnx").path, "--full", dir.appendingPathComponent("full.onnx").path,
                                       "--rate", "20", "--heartbeat-ms", "\(Self.heartbeat)", "--liveness", "\(Self.liveness)"])
        let warned = cam.waitForStderr("the edge refuses this camera's frames", timeout: 60)
        #expect(warned != nil, "no warning: \(cam.stderr.suffix(2000))")
        #expect(cam.stderr.contains("BAD_REQUEST") && cam.stderr.contains("does not match model tiny"), "\(cam.stderr.suffix(2000))")
        #expect(cam.stop() == 0)
        let s = checkCamera(cam, "cam1")
        #expect(int(s, "dropped") == 0 && int(s, "completed_edge") == 0, "\(cam.stdout)")
        #expect(w.stop() == 0)
        #expect(b.stop() == 0)
    }

    // MARK: A full edge, shared

    /// Three cameras offer several times what one slow worker can do: no camera is starved (each
    /// keeps offering its share, and the broker serves cameras round robin), none drops a frame
    /// (the whole model is there), and none calls the edge dead.
    @Test func aFullEdgeIsSharedAndNobodyIsStarved() throws {
        try #require(models.problem == nil, "\(models.problem ?? "")")
        let t0 = Date()
        let fleet = try Fleet()
        defer { fleet.stopAll() }
        let b = broker(fleet, extra: ["--queue-capacity", "6"])
        try #require(b.waitForStderr("broker serving", timeout: 30) != nil, "\(b.stderr)")
        let w = worker(fleet, id: "w1", tail: models.slowTail, extra: ["--credit", "1", "--max-batch", "1"])
        try #require(b.waitForStderr("worker joined", timeout: 60) != nil, "\(fleet.transcript)")
        let ids = ["cam1", "cam2", "cam3"]
        // The SLO leaves the slow worker time to answer: the edge is full, not useless.
        // A long camera liveness too: on an overloaded machine a heartbeat answer 600 ms late is
        // not a dead broker, and this test is about a full one.
        let cams = ids.map { camera(fleet, id: $0, rate: 40, extra: ["--slo-ms", "1000", "--liveness", "30"]) }
        for c in cams { try #require(c.waitForStderr("camera started", timeout: 60) != nil, "\(fleet.transcript)") }
        // Congested from whichever state: on a starved machine the broker may lose the slow worker
        // for a moment (its heartbeats late), and a camera then passes through starting
        // (UNKNOWN_MODEL) first. What must never happen is dead (checked below).
        for c in cams {
            #expect(c.waitForStderr(matching: /edge \w+ -> congested/, after: 0, timeout: 60) != nil,
                    "\(c.name): \(c.stderr.suffix(1500))\nbroker: \(b.stderr.suffix(1500))")
        }
        Thread.sleep(forTimeInterval: 4)
        note("overloaded for 4 s", since: t0)
        var edge: [Int] = []
        for (c, id) in zip(cams, ids) {
            #expect(c.stop() == 0)
            let s = checkCamera(c, id)
            edge.append(int(s, "completed_edge"))
            #expect(int(s, "dropped") == 0, "\(c.stdout)")
            #expect(!c.stderr.contains("-> dead"), "a full edge was taken for a dead one: \(c.stderr.suffix(1500))")
        }
        let mean = Double(edge.reduce(0, +)) / Double(edge.count)
        note("edge frames per camera \(edge)", since: t0)
        #expect(mean > 0)
        // No starvation: a generous bound for a busy machine (the study measures the factor of 2).
        #expect(edge.allSatisfy { Double($0) >= mean / 4 }, "a camera was starved: \(edge)")
        #expect(w.stop() == 0)
        #expect(b.stop() == 0)
    }
}
