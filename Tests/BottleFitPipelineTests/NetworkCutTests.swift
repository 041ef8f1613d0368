import Foundation
import Testing
import BottleFitTestSupport

/// Two network namespaces this test makes itself, joined by a veth pair, with addresses of
/// 10.213.7.0/24 that exist only inside them. Removed by `remove()` (and the veth with them).
final class NamespacePair: @unchecked Sendable {
    // @unchecked: used from the test's thread only.
    let edge: String
    let cameras: String
    let edgeLink: String
    let cameraLink: String
    static let edgeAddress = "10.213.7.1"
    static let cameraAddress = "10.213.7.2"

    /// Runs `ip ARGS`; the failure as text, or nil.
    @discardableResult
    static func ip(_ arguments: [String]) -> String? {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        p.arguments = arguments
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        do { try p.run() } catch { return "cannot run ip: \(error)" }
        // Bounded: on a very busy machine an `ip` call has once blocked for minutes.
        let deadline = Date().addingTimeInterval(120)
        while p.isRunning, Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        if p.isRunning {
            p.terminate()
            return "ip \(arguments.joined(separator: " ")): no answer in 120 s"
        }
        p.waitUntilExit()
        let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return p.terminationStatus == 0 ? nil : "ip \(arguments.joined(separator: " ")): \(text)"
    }

    /// Whether this machine lets the test make namespaces: root, `ip`, and `ip netns add` works.
    static let available: Bool = {
        guard getuid() == 0, FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip") else { return false }
        let probe = "bfp-probe-\(getpid())"
        guard ip(["netns", "add", probe]) == nil else { return false }
        ip(["netns", "del", probe])
        return true
    }()

    init() throws {
        let tag = "\(getpid() % 100_000)"
        edge = "bfp-edge-\(tag)"
        cameras = "bfp-cams-\(tag)"
        edgeLink = "bfe\(tag)"
        cameraLink = "bfc\(tag)"
        let steps: [[String]] = [
            ["netns", "add", edge], ["netns", "add", cameras],
            ["link", "add", edgeLink, "type", "veth", "peer", "name", cameraLink],
            ["link", "set", edgeLink, "netns", edge], ["link", "set", cameraLink, "netns", cameras],
            ["-n", edge, "addr", "add", "\(Self.edgeAddress)/24", "dev", edgeLink],
            ["-n", cameras, "addr", "add", "\(Self.cameraAddress)/24", "dev", cameraLink],
            ["-n", edge, "link", "set", "lo", "up"], ["-n", cameras, "link", "set", "lo", "up"],
            ["-n", edge, "link", "set", edgeLink, "up"], ["-n", cameras, "link", "set", cameraLink, "up"],
        ]
        for step in steps {
            if let failure = Self.ip(step) {
                remove()
                throw NamespaceError(text: failure)
            }
        }
    }

    struct NamespaceError: Error, CustomStringConvertible { var text: String; var description: String { text } }

    func launcher(_ namespace: String) -> [String] { ["/usr/sbin/ip", "netns", "exec", namespace] }

    /// Cuts the link on the cameras' side (their interface down), or heals it.
    func setLink(up: Bool) -> String? { Self.ip(["-n", cameras, "link", "set", cameraLink, up ? "up" : "down"]) }

    func remove() {
        Self.ip(["netns", "del", cameras])
        Self.ip(["netns", "del", edge])
    }
}

/// A network cut and heal between the cameras and the edge (issue 13), across network
/// namespaces: the cameras go local while the link is down, lose nothing, and return to the
/// edge once it is back. Needs root (skipped with a message otherwise).
@Suite(.serialized, .blocking) struct NetworkCutTests {
    static let heartbeat = 200
    static let liveness = 3
    let models = TinyModels.files

    @Test(.enabled(if: NamespacePair.available, "needs root and `ip netns` (it makes two network namespaces)"))
    func camerasGoLocalDuringANetworkCutAndReturnWhenItHeals() throws {
        try #require(models.problem == nil, "\(models.problem ?? "")")
        NamespaceLock.acquire()
        defer { NamespaceLock.release() }
        let t0 = Date()
        let net = try NamespacePair()
        let fleet = try Fleet()
        defer {
            fleet.stopAll()
            net.remove()
        }
        let host = NamespacePair.edgeAddress
        let b = fleet.start("broker", ["broker", "--frontend", "tcp://\(host):5601", "--backend", "tcp://\(host):5602",
                                       "--stats", "tcp://\(host):5603", "--heartbeat-ms", "\(Self.heartbeat)",
                                       "--liveness", "\(Self.liveness)"], launcher: net.launcher(net.edge))
        try #require(b.waitForStderr("broker serving", timeout: 30) != nil, "\(b.stderr)")
        let w = fleet.start("w1", ["worker", "--broker", "tcp://\(host):5602", "--id", "w1", "--model", "tiny=\(models.tail),\(models.full)",
                                   "--heartbeat-ms", "\(Self.heartbeat)", "--liveness", "\(Self.liveness)"], launcher: net.launcher(net.edge))
        try #require(b.waitForStderr("worker joined", timeout: 60) != nil, "\(fleet.transcript)")
        let cams = ["cam1", "cam2"].map { id in
            fleet.start(id, ["device", "--broker", "tcp://\(host):5601", "--id", id, "--model", "tiny", "--head", models.head,
                             "--full", models.full, "--rate", "15", "--slo-ms", "1000",
                             "--heartbeat-ms", "\(Self.heartbeat)", "--liveness", "\(Self.liveness)"], launcher: net.launcher(net.cameras))
        }
        for c in cams {
            try #require(c.waitForStderr("camera started", timeout: 60) != nil, "\(fleet.transcript)")
            try #require(onEdge(c, after: 0, timeout: 30) != nil, "\(c.name) never reached the edge: \(c.stderr.suffix(2000))")
        }
        note("cameras on the edge across the link", since: t0)

        let beforeCut = cams.map(\.stderrCount)
        try #require(net.setLink(up: false) == nil, "could not cut the link")
        let cut = Date()
        for (c, offset) in zip(cams, beforeCut) {
            let dead = c.waitForStderr(matching: /edge [a-z]+ -> dead/, after: offset, timeout: 20)
            #expect(dead != nil, "\(c.name) did not notice the cut: \(c.stderr(after: offset).suffix(2000))")
            if let dead { note("\(c.name) dead \(String(format: "%.2f", dead.timeIntervalSince(cut))) s after the cut", since: t0) }
        }
        // Down long enough for local frames to pile up (15 fps each).
        Thread.sleep(forTimeInterval: max(0, 2.5 - Date().timeIntervalSince(cut)))

        let beforeHeal = cams.map(\.stderrCount)
        try #require(net.setLink(up: true) == nil, "could not heal the link")
        let healed = Date()
        for (c, offset) in zip(cams, beforeHeal) {
            // TCP retransmits what the cut held back on its own schedule (its back-off doubles
            // from 200 ms), then the camera hears the broker: 60 s only bounds a very busy machine.
            let back = c.waitForStderr(matching: /edge [a-z]+ -> (healthy|congested)/, after: offset, timeout: 60)
            #expect(back != nil, "\(c.name) never returned after the link healed: \(c.stderr(after: offset).suffix(2000))")
            if let back { note("\(c.name) back \(String(format: "%.2f", back.timeIntervalSince(healed))) s after the heal", since: t0) }
        }
        Thread.sleep(forTimeInterval: 1)

        var local = 0
        for c in cams {
            #expect(c.stop() == 0, "\(c.stderr.suffix(2000))")
            let s = checkCamera(c, c.name)
            #expect(int(s, "completed_edge") > 0, "\(c.name): \(c.stdout)")
            local += int(s, "completed_local")
        }
        #expect(local > 0, "the cameras computed nothing locally during the cut")
        #expect(w.stop() == 0, "\(w.stderr.suffix(2000))")
        #expect(b.stop() == 0, "\(b.stderr.suffix(2000))")
        checkBrokerBalance(brokerLine(b))
    }
}
