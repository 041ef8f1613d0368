import BottleFitCore
import BottleFitProtocol
import Foundation
import ZeroMQ

/// The broker's backend as the tests play it: a ROUTER bound on `inproc://`, which reads what
/// the worker sends and sends it FRAMEs and HEARTBEATs with the envelopes of protocol.md.
///
/// Every wait is bounded by a timeout; nothing loops forever.
final class FakeBroker {
    /// What arrived from a worker: a control message (`[rid, empty, msg]`) or an answer
    /// (`[rid, empty, camera-rid, empty, msg]`), decoded.
    enum Inbound {
        case control(worker: [UInt8], Message)
        case answer(worker: [UInt8], camera: [UInt8], Message)
    }

    let context: ZMQContext
    let endpoint: String
    private let socket: ZMQSocket
    private let poller = ZMQPoller()
    /// Every control message received, in order (READY, CREDIT, HEARTBEAT, DISCONNECT).
    private(set) var controls: [(worker: [UInt8], message: Message)] = []
    /// Messages with a layout the protocol does not have (should stay 0).
    private(set) var malformed = 0

    /// A broker bound at once, or (`bindNow: false`) only when `bind()` is called.
    init(bindNow: Bool = true) throws {
        context = try ZMQContext()
        endpoint = "inproc://bottlefit-worker-test-\(UUID().uuidString)"
        socket = try ZMQSocket(context, type: .router, linger: 0)
        try socket.setOption(.routerMandatory, true)
        try poller.add(socket)
        if bindNow { try bind() }
    }

    /// Starts accepting the worker's connection.
    func bind() throws { try socket.bind(endpoint) }

    /// The next message, or nil after `timeout`.
    func receive(timeout: Duration) throws -> Inbound? {
        guard try poller.poll(timeout: timeout) > 0, let frames = try socket.tryReceive() else { return nil }
        if frames.count == 3, frames[1].isEmpty {
            let message = try Message.decode(frames[2])
            controls.append((frames[0], message))
            return .control(worker: frames[0], message)
        }
        if frames.count == 5, frames[1].isEmpty, frames[3].isEmpty {
            return .answer(worker: frames[0], camera: frames[2], try Message.decode(frames[4]))
        }
        malformed += 1
        return nil
    }

    /// Waits for a READY (skipping anything else) and returns the worker's routing id with it.
    func expectReady(timeout: Duration = .seconds(30)) throws -> (worker: [UInt8], ready: ReadyMessage)? {
        let clock = ContinuousClock()
        let until = clock.now + timeout
        while clock.now < until {
            if case .control(let worker, .ready(let ready))? = try receive(timeout: clock.now.duration(to: until)) {
                return (worker, ready)
            }
        }
        return nil
    }

    /// Sends a FRAME to `worker` as if routed from the camera with routing id `camera`.
    func send(_ frame: FrameMessage, to worker: [UInt8], camera: [UInt8]) throws {
        try sendWork(try frame.encoded(), to: worker, camera: camera)
    }

    /// Sends raw bytes in the work envelope `[worker-rid, empty, camera-rid, empty, bytes]`.
    func sendWork(_ bytes: [UInt8], to worker: [UInt8], camera: [UInt8]) throws {
        try socket.send([worker, [], camera, [], bytes])
    }

    /// Sends a control message `[worker-rid, empty, msg]`.
    func sendControl(_ message: Message, to worker: [UInt8]) throws {
        try socket.send([worker, [], try message.encoded()])
    }

    /// Collects `count` answers (RESULT or ERROR) within `timeout`, heartbeating the worker
    /// every 200 ms meanwhile so it never declares this broker dead. Returns what arrived.
    func collectAnswers(_ count: Int, from worker: [UInt8], timeout: Duration = .seconds(60)) throws -> [(camera: [UInt8], message: Message)] {
        let clock = ContinuousClock()
        let until = clock.now + timeout
        var lastBeat = clock.now
        var answers: [(camera: [UInt8], message: Message)] = []
        while answers.count < count && clock.now < until {
            if clock.now - lastBeat >= .milliseconds(200) {
                try sendControl(.heartbeat(HeartbeatMessage()), to: worker)
                lastBeat = clock.now
            }
            if case .answer(_, let camera, let message)? = try receive(timeout: .milliseconds(50)) {
                answers.append((camera, message))
            }
        }
        return answers
    }

    /// Receives for `duration`, heartbeating `worker` every `heartbeat` if given.
    func listen(for duration: Duration, heartbeating worker: [UInt8]? = nil, every heartbeat: Duration = .milliseconds(100)) throws {
        let clock = ContinuousClock()
        let until = clock.now + duration
        var lastBeat = clock.now
        while clock.now < until {
            if let worker, clock.now - lastBeat >= heartbeat {
                try sendControl(.heartbeat(HeartbeatMessage()), to: worker)
                lastBeat = clock.now
            }
            _ = try receive(timeout: .milliseconds(20))
        }
    }

    /// Credits returned so far by `worker`.
    func credits(from worker: [UInt8]) -> Int {
        controls.reduce(0) { sum, c in
            if c.worker == worker, case .credit(let m) = c.message { return sum + m.credits }
            return sum
        }
    }

    /// Control messages of one type from `worker`.
    func count(_ type: MessageType, from worker: [UInt8]) -> Int {
        controls.filter { $0.worker == worker && $0.message.type == type }.count
    }
}

/// Unix milliseconds now, for FRAME deadlines.
func nowMilliseconds() -> UInt64 { UInt64(Date().timeIntervalSince1970 * 1000) }

/// A FRAME carrying a quantized bottleneck, with a generous deadline unless given.
func bottleneckFrame(camera: String = "cam-1", sequence: UInt64, model: String = WorkerTestModels.modelName,
                     _ q: QuantizedTensor, deadline: UInt64? = nil) -> FrameMessage {
    let now = nowMilliseconds()
    return FrameMessage(cameraID: camera, sequence: sequence, model: model, payload: .bottleneck(q),
                        deadline: deadline ?? now + 120_000, sentAt: now)
}
