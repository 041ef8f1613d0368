import BottleFitBroker
import BottleFitSecurity
import Foundation
import Synchronization
import Testing
import ZeroMQ

/// Key pairs and allow-list files for a test fleet: the broker, one camera, one worker, one
/// STATS subscriber, and a stranger on no list.
struct TestFleetKeys {
    let broker: ZMQCurveKeyPair
    let camera: ZMQCurveKeyPair
    let worker: ZMQCurveKeyPair
    let subscriber: ZMQCurveKeyPair
    let stranger: ZMQCurveKeyPair
    let directory: String

    init() throws {
        broker = try .generate()
        camera = try .generate()
        worker = try .generate()
        subscriber = try .generate()
        stranger = try .generate()
        directory = "/tmp/bfcurve-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try "# cameras\n\(camera.publicKey)  # camera-1\n".write(toFile: path("cameras.allow"), atomically: true, encoding: .utf8)
        try "\(worker.publicKey)\n".write(toFile: path("workers.allow"), atomically: true, encoding: .utf8)
        try "\(subscriber.publicKey)\n".write(toFile: path("stats.allow"), atomically: true, encoding: .utf8)
    }

    func path(_ name: String) -> String { "\(directory)/\(name)" }

    var brokerCurve: BrokerCurve {
        BrokerCurve(keys: broker, cameraAllowList: path("cameras.allow"), workerAllowList: path("workers.allow"), statsAllowList: path("stats.allow"))
    }

    func client(_ keys: ZMQCurveKeyPair) -> CurveClient { CurveClient(keys: keys, serverKey: broker.publicKey) }

    func remove() { try? FileManager.default.removeItem(atPath: directory) }
}

/// Watches one socket's connection events through a monitor PAIR socket (same thread as the test).
final class SocketWatch {
    private let pair: ZMQSocket
    private(set) var seen: [ZMQMonitorEvent] = []

    init(_ socket: ZMQSocket, context: ZMQContext) throws {
        let endpoint = "inproc://watch-\(UUID().uuidString.prefix(8))"
        try socket.monitor(endpoint, events: [.connected, .disconnected, .handshakeSucceeded, .handshakeFailed])
        pair = try ZMQSocket(context, type: .pair, linger: 0)
        try pair.connect(endpoint)
    }

    func service() throws {
        while let frames = try pair.tryReceive() {
            if let event = ZMQMonitorEvent(frames: frames) { seen.append(event) }
        }
    }

    func saw(_ events: ZMQMonitorEvents) -> Bool { seen.contains { !$0.event.isDisjoint(with: events) } }
}

/// A raw TCP relay between a client and a server, made of two `ZMQ_STREAM` sockets on a thread of
/// its own, that keeps every byte it forwards: what a packet capture on loopback would see.
final class CapturingRelay: Sendable {
    /// Where clients connect instead of the server.
    let endpoint: String

    init(context: ZMQContext, server: String) throws {
        let relay = Box()
        SocketThread.spawn(name: "test-relay") { [relay] in
            relay.run(context: context, server: server, ready: { r in relay.started.withLock { $0 = r } })
        }
        var result: Result<String, ZMQError>?
        for _ in 0..<10_000 {
            result = relay.started.withLock { $0 }
            if result != nil { break }
            usleep(1000)
        }
        endpoint = try #require(result).get()
        box = relay
    }

    private let box: Box

    /// Every byte forwarded so far, both directions, in arrival order.
    var bytes: [UInt8] { box.captured.withLock { $0 } }

    func stop() { box.stop.store(true, ordering: .releasing) }

    /// The relay's thread-side state.
    private final class Box: Sendable {
        let captured = Mutex<[UInt8]>([])
        let stop = Atomic<Bool>(false)
        let started = Mutex<Result<String, ZMQError>?>(nil)

        func run(context: ZMQContext, server: String, ready: (Result<String, ZMQError>) -> Void) {
            do throws(ZMQError) {
                let front = try ZMQSocket(context, type: .stream, linger: 0)
                try front.bind("tcp://127.0.0.1:*")
                let back = try ZMQSocket(context, type: .stream, linger: 0)
                let serverID = Array("server".utf8)
                try back.setOption(.connectRoutingID, serverID)
                try back.connect(server)
                let poller = ZMQPoller()
                try poller.add(front)
                try poller.add(back)
                ready(.success(try front.option(.lastEndpoint)))
                var client: [UInt8]?
                var pendingToServer: [[UInt8]] = []
                // The server greets as soon as the relay connects, before any client is there.
                var pendingToClient: [[UInt8]] = []
                var serverUp = false
                while !stop.load(ordering: .acquiring) {
                    _ = try poller.poll(timeout: .milliseconds(20))
                    while let frames = try front.tryReceive(limits: ZMQReceiveLimits(maxFrames: 2, maxBytes: 16 << 20)) {
                        guard frames.count == 2 else { continue }
                        client = frames[0]
                        if frames[1].isEmpty { continue }  // a connection or disconnection notice
                        captured.withLock { $0 += frames[1] }
                        pendingToServer.append(frames[1])
                    }
                    while let frames = try back.tryReceive(limits: ZMQReceiveLimits(maxFrames: 2, maxBytes: 16 << 20)) {
                        guard frames.count == 2 else { continue }
                        if frames[1].isEmpty { serverUp = true; continue }
                        captured.withLock { $0 += frames[1] }
                        pendingToClient.append(frames[1])
                    }
                    if let client {
                        for data in pendingToClient { try front.send([client, data]) }
                        pendingToClient.removeAll()
                    }
                    if serverUp {
                        for data in pendingToServer { try back.send([serverID, data]) }
                        pendingToServer.removeAll()
                    }
                }
            } catch {
                ready(.failure(error))
            }
        }
    }
}

extension [UInt8] {
    /// Whether `pattern` occurs in these bytes.
    func contains(_ pattern: [UInt8]) -> Bool {
        guard !pattern.isEmpty, count >= pattern.count else { return false }
        return (0...(count - pattern.count)).contains { i in self[i..<(i + pattern.count)].elementsEqual(pattern) }
    }
}
