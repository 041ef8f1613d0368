import BottleFitBroker
import BottleFitCore
import BottleFitProtocol
import BottleFitSecurity
import Foundation
import Logging
import Testing
import ZeroMQ

/// Wall-clock Unix milliseconds, as cameras write deadlines.
func unixMilliseconds() -> UInt64 { UInt64(Date().timeIntervalSince1970 * 1000) }

/// A logger that discards everything, so test output stays readable.
let quietLogger = Logger(label: "bottlefit.broker.test", factory: { _ in SwiftLogNoOpLogHandler() })

/// Where a test broker listens: all three sockets on one transport.
enum TestTransport {
    case inproc
    case ipc(directory: URL)
    case loopbackTCP

    func configuration(policy: BrokerPolicy) -> BrokerConfiguration {
        let name = "bf-broker-\(UUID().uuidString.prefix(8))"
        var configuration: BrokerConfiguration
        switch self {
        case .inproc:
            configuration = BrokerConfiguration(
                frontendEndpoint: "inproc://\(name)-front", backendEndpoint: "inproc://\(name)-back", statsEndpoint: "inproc://\(name)-stats",
                policy: policy)
        case .ipc(let directory):
            configuration = BrokerConfiguration(
                frontendEndpoint: "ipc://\(directory.path)/front", backendEndpoint: "ipc://\(directory.path)/back",
                statsEndpoint: "ipc://\(directory.path)/stats", policy: policy)
        case .loopbackTCP:
            configuration = BrokerConfiguration(
                frontendEndpoint: "tcp://127.0.0.1:*", backendEndpoint: "tcp://127.0.0.1:*", statsEndpoint: "tcp://127.0.0.1:*",
                policy: policy)
        }
        configuration.linger = 0
        return configuration
    }
}

/// A tail worker stand-in on a DEALER: READY on connect, a RESULT and a CREDIT for every FRAME,
/// HEARTBEAT when idle. Serviced by the test's own thread through `service()`.
final class FakeWorker {
    let name: String
    let socket: ZMQSocket
    /// Every FRAME received, answered or not.
    private(set) var frames: [FrameMessage] = []
    /// Control messages from the broker (HEARTBEAT, DISCONNECT, ERROR).
    private(set) var controls: [Message] = []
    /// Whether it answers frames; false plays a worker whose compute hung.
    var answers = true
    /// Whether it sends heartbeats; false (with `answers` false) plays a dead worker.
    var heartbeats = true
    private var lastSent = ContinuousClock.now

    init(_ context: ZMQContext, endpoint: String, name: String, models: [String] = ["m"], credit: Int, curve: CurveClient? = nil) throws {
        self.name = name
        socket = try ZMQSocket(context, type: .dealer, linger: 0)
        try socket.setOption(.sendTimeout, 2000)  // a broken test fails instead of hanging
        try curve?.apply(to: socket)
        try socket.connect(endpoint)
        try send(.ready(ReadyMessage(workerID: name, models: models, credit: credit)))
    }

    func send(_ message: Message) throws {
        try socket.send([[], message.encoded()])
        lastSent = .now
    }

    func service() throws {
        while let parts = try socket.tryReceive() {
            if parts.count == 4 && parts[0].isEmpty && parts[2].isEmpty {
                let frame = try FrameMessage.decode(parts[3])
                frames.append(frame)
                guard answers else { continue }
                let result = ResultMessage(
                    cameraID: frame.cameraID, sequence: frame.sequence, classIndices: [3, 1], scores: [0.75, 0.25],
                    queuedMilliseconds: 0.5, computeMilliseconds: 1.5, batchSize: 1, workerID: name)
                // The camera's routing id goes back byte for byte.
                try socket.send([[], parts[1], [], result.encoded()])
                try send(.credit(CreditMessage(credits: 1)))
            } else if parts.count == 2 && parts[0].isEmpty {
                controls.append(try Message.decode(parts[1]))
            } else {
                Issue.record("worker \(name) got a message of \(parts.count) frames")
            }
        }
        if heartbeats && ContinuousClock.now - lastSent >= .milliseconds(50) {
            // Without blocking: once the broker has gone there is nobody to send to.
            _ = try socket.trySend([[], HeartbeatMessage().encoded()])
            lastSent = .now
        }
    }
}

/// A camera stand-in on a DEALER: sends FRAMEs (or anything else) and collects the answers.
final class FakeCamera {
    let name: String
    let socket: ZMQSocket
    private(set) var results: [ResultMessage] = []
    private(set) var errors: [ErrorMessage] = []
    private(set) var others: [Message] = []
    /// Answers that did not decode or had the wrong layout.
    private(set) var malformed = 0

    convenience init(_ context: ZMQContext, endpoint: String, name: String, curve: CurveClient? = nil) throws {
        let socket = try ZMQSocket(context, type: .dealer, linger: 0)
        try curve?.apply(to: socket)
        try self.init(socket: socket, endpoint: endpoint, name: name)
    }

    /// A camera on a DEALER the test made (and configured, or watches) itself.
    init(socket: ZMQSocket, endpoint: String, name: String) throws {
        self.name = name
        self.socket = socket
        try socket.setOption(.sendTimeout, 2000)
        try socket.connect(endpoint)
    }

    func sendFrame(_ sequence: UInt64, model: String = "m", deadlineIn: UInt64 = 10_000) throws {
        let frame = SchedulerHarness.frameMessage(name, sequence, model: model, deadline: unixMilliseconds() + deadlineIn)
        try socket.send([[], frame.encoded()])
    }

    func send(_ parts: [[UInt8]]) throws { try socket.send(parts) }

    func service() throws {
        while let parts = try socket.tryReceive() {
            guard parts.count == 2, parts[0].isEmpty, let message = try? Message.decode(parts[1]) else {
                malformed += 1
                continue
            }
            switch message {
            case .result(let result): results.append(result)
            case .error(let error): errors.append(error)
            default: others.append(message)
            }
        }
    }

    /// Sequence numbers answered with a RESULT.
    var completed: Set<UInt64> { Set(results.map(\.sequence)) }
}

/// Services the fake peers until `done` holds, for at most `timeout` and a bounded number of rounds.
@discardableResult
func pump(_ peers: [() throws -> Void], timeout: Duration = .seconds(10), until done: () -> Bool) throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    for _ in 0..<1_000_000 {
        for service in peers { try service() }
        if done() { return true }
        if ContinuousClock.now >= deadline { break }
        usleep(1000)
    }
    return done()
}

/// Starts a broker for a test; the caller stops it (`defer`).
func startBroker(_ context: ZMQContext, transport: TestTransport, policy: BrokerPolicy) throws -> (Broker, BrokerEndpoints) {
    let broker = Broker(configuration: transport.configuration(policy: policy), context: context, logger: quietLogger)
    return (broker, try broker.start())
}
