import BottleFitCore
import BottleFitProtocol
import Foundation
import Testing
import ZeroMQ
import BottleFitTestSupport

/// The broker's goodbyes at shutdown (docs/protocol.md section 10): a queued frame is answered
/// BUSY and a worker is told DISCONNECT, and both arrive at peers whose DEALERs use
/// `ZMQ_IMMEDIATE` as section 9 asks, even when they read only after the broker has exited.
/// Several rounds, because the loss reported in issue 13 happened in some runs only.
@Suite(.blocking) struct ShutdownGoodbyeTests {
    @Test func busyAndDisconnectReachImmediatePeersAfterTheBrokerExits() throws {
        var lost: [String] = []
        for round in 0..<8 {
            let fleet = try Fleet()
            defer { fleet.stopAll() }
            let b = fleet.start("broker", ["broker", "--frontend", fleet.endpoint("front"), "--backend", fleet.endpoint("back"),
                                           "--stats", fleet.endpoint("stats")])
            try #require(b.waitForStderr("broker serving", timeout: 60) != nil, "\(b.stderr)")
            let context = try ZMQContext()
            func dealer(_ endpoint: String) throws -> ZMQSocket {
                let s = try ZMQSocket(context, type: .dealer, linger: 0)
                try s.setOption(.immediate, true)
                try s.connect(endpoint)
                return s
            }
            /// Sends once the connection is up (IMMEDIATE says "would block" until then).
            func send(_ s: ZMQSocket, _ message: Message) throws {
                let deadline = ContinuousClock.now + .seconds(60)
                while try !s.trySend([[], message.encoded()]) {
                    try #require(ContinuousClock.now < deadline, "never connected")
                    usleep(2000)
                }
            }
            let worker = try dealer(fleet.endpoint("back"))
            try send(worker, .ready(ReadyMessage(workerID: "w", models: ["m"], credit: 1)))
            try #require(b.waitForStderr("worker joined", timeout: 60) != nil, "\(b.stderr)")
            let camera = try dealer(fleet.endpoint("front"))
            // The worker (credit 1, never answering) holds frame 1; frame 2 waits in the queue until
            // its deadline, a minute away.
            let now = UInt64(Date().timeIntervalSince1970 * 1000)
            for sequence: UInt64 in 1...2 {
                try send(camera, .frame(FrameMessage(
                    cameraID: "cam", sequence: sequence, model: "m",
                    payload: .bottleneck(QuantizedTensor(shape: [1, 2, 2], data: [1, 2, 3, 4], parameters: QuantizationParameters(scale: 1, zeroPoint: 0))),
                    deadline: now + 60_000, sentAt: now)))
            }
            // The broker reads one connection in order: its answer to this HEARTBEAT means both frames are in.
            try send(camera, .heartbeat(HeartbeatMessage()))
            try camera.setOption(.receiveTimeout, 60_000)
            var early: [Message] = []
            while true {
                let parts = try camera.receive()
                guard parts.count == 2, let message = try? Message.decode(parts[1]) else { continue }
                if message.type == .heartbeat { break }
                early.append(message)
            }
            try #require(early.isEmpty, "answered before the shutdown: \(early)")

            #expect(b.stop() == 0, "\(b.stderr)")
            // Read only now: the broker has exited, its connections are closed.
            var busy = false, cameraDisconnect = false, workerDisconnect = false
            while let parts = try camera.tryReceive() {
                guard parts.count == 2, let message = try? Message.decode(parts[1]) else { continue }
                if case .error(let e) = message, e.code == .busy, e.sequence == 2 { busy = true }
                if case .disconnect = message { cameraDisconnect = true }
            }
            while let parts = try worker.tryReceive() {
                guard parts.count == 2, let message = try? Message.decode(parts[1]) else { continue }
                if case .disconnect = message { workerDisconnect = true }
            }
            if !busy { lost.append("round \(round): BUSY") }
            if !cameraDisconnect { lost.append("round \(round): camera DISCONNECT") }
            if !workerDisconnect { lost.append("round \(round): worker DISCONNECT") }
        }
        #expect(lost.isEmpty, "goodbyes lost: \(lost)")
    }
}
