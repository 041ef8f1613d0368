import BottleFitDevice
import BottleFitProtocol
import Foundation
import ZeroMQ

/// A message that reached the load generator.
enum LoadgenInbound {
    /// From the broker, on connection `connection`: the message body (after the empty delimiter).
    case reply(connection: Int, bytes: [UInt8])
    /// A DIRECTIVE body from the controller.
    case directive([UInt8])
    /// A STATS body from the broker.
    case stats([UInt8])
}

/// How the loop talks to the edge: sockets in a real run, an in-process sink when measuring the
/// load generator itself. Owned and used by the loop's thread only.
protocol LoadgenTransport: AnyObject {
    /// Connections to the broker (cameras are spread over them).
    var connectionCount: Int { get }
    /// Hands a message to connection `connection` without blocking; false when it cannot be queued.
    func trySend(_ bytes: [UInt8], connection: Int) -> Bool
    /// Waits at most `timeoutMicroseconds` for messages and hands each received (a bounded batch) to `handle`.
    func poll(timeoutMicroseconds: UInt64, handle: (LoadgenInbound) -> Void)
    /// Says goodbye (DISCONNECT) and closes.
    func close()
}

/// The real transport: one DEALER per connection to the broker's frontend (protocol.md section 9,
/// set up as `CameraSockets` sets a camera's), a SUB for directives and a SUB for STATS.
///
/// The broker keys its fair queues by (connection, camera id) (docs/broker.md, "Fairness"), so
/// cameras sharing a DEALER still get one queue each; connections only spread the socket load.
final class ZMQLoadgenTransport: LoadgenTransport {
    private let dealers: [ZMQSocket]
    private let directives: ZMQSocket?
    private let stats: ZMQSocket?
    private let poller = ZMQPoller()
    static let receiveBatch = 256

    init(
        context: ZMQContext, broker: String, connections: Int, sendHighWaterMark: Int, directives directiveEndpoint: String?,
        stats statsEndpoint: String?, curve: CameraCurve? = nil
    ) throws(LoadgenError) {
        if curve != nil, directiveEndpoint != nil, curve?.controllerKey == nil {
            throw LoadgenError("directives over CURVE need the controller's public key (--controller-key)")
        }
        let maxMessage = Int64(ProtocolLimits.default.maxMessageBytes)
        do {
            var dealers: [ZMQSocket] = []
            for _ in 0..<connections {
                let socket = try ZMQSocket(context, type: .dealer, linger: 0)
                // Not queued for a broker that is not connected: the camera learns at once (CameraSockets.make).
                try socket.setOption(.immediate, true)
                try socket.setOption(.maxMessageSize, maxMessage)
                try socket.setOption(.sendHighWaterMark, Int32(clamping: sendHighWaterMark))
                try socket.setOption(.receiveHighWaterMark, Int32(clamping: max(1000, sendHighWaterMark)))
                if let curve { try socket.makeCurveClient(curve.keys, serverKey: curve.brokerKey) }
                try socket.connect(broker)
                _ = try poller.add(socket)
                dealers.append(socket)
            }
            self.dealers = dealers
            let poller = self.poller
            func subscriber(_ endpoint: String?, topic: String, serverKey: String?) throws(ZMQError) -> ZMQSocket? {
                guard let endpoint else { return nil }
                let socket = try ZMQSocket(context, type: .sub, linger: 0)
                try socket.setOption(.maxMessageSize, maxMessage)
                if let curve, let serverKey { try socket.makeCurveClient(curve.keys, serverKey: serverKey) }
                try socket.setOption(.subscribe, Array(topic.utf8))
                try socket.connect(endpoint)
                _ = try poller.add(socket)
                return socket
            }
            // STATS come from the broker's PUB, whose allow-list must hold this key (--allow-stats).
            directives = try subscriber(directiveEndpoint, topic: "directive", serverKey: curve?.controllerKey)
            stats = try subscriber(statsEndpoint, topic: "stats", serverKey: curve?.brokerKey)
        } catch {
            throw LoadgenError("cannot connect to the broker (\(broker)): \(error)")
        }
    }

    var connectionCount: Int { dealers.count }

    func trySend(_ bytes: [UInt8], connection: Int) -> Bool {
        (try? dealers[connection].trySend([[], bytes])) == true
    }

    func poll(timeoutMicroseconds: UInt64, handle: (LoadgenInbound) -> Void) {
        // zmq_poll counts whole milliseconds: wait the whole ones there, the rest (under 1 ms) in a
        // short sleep, so the schedule is kept to well under a millisecond.
        let wholeMilliseconds = timeoutMicroseconds / 1000 * 1000
        let ready = (try? poller.poll(timeout: .microseconds(Int64(wholeMilliseconds)))) ?? 0
        guard ready > 0 else {
            if wholeMilliseconds == 0, timeoutMicroseconds > 0 { usleep(UInt32(timeoutMicroseconds)) }
            return
        }
        let limits = ZMQReceiveLimits(maxFrames: 4, maxBytes: ProtocolLimits.default.maxMessageBytes)
        for (i, socket) in dealers.enumerated() where poller.events(at: i).contains(.readable) {
            for _ in 0..<Self.receiveBatch {
                guard let frames = (try? socket.tryReceive(limits: limits)) ?? nil else { break }
                // [empty, message]; anything else is handed on empty so the loop counts it as undecodable.
                handle(.reply(connection: i, bytes: frames.count == 2 && frames[0].isEmpty ? frames[1] : []))
            }
        }
        for (socket, wrap) in [(directives, LoadgenInbound.directive), (stats, LoadgenInbound.stats)] {
            guard let socket, poller.events(for: socket).contains(.readable) else { continue }
            for _ in 0..<Self.receiveBatch {
                guard let frames = (try? socket.tryReceive(limits: limits)) ?? nil else { break }
                if frames.count == 2 { handle(wrap(frames[1])) }
            }
        }
    }

    func close() {
        let bye = (try? DisconnectMessage(reason: "load generator stopping").encoded()) ?? []
        for socket in dealers {
            _ = try? socket.trySend([[], bye])
            try? socket.close()
        }
        try? directives?.close()
        try? stats?.close()
    }
}

/// An edge that answers every FRAME at once with a RESULT (and every HEARTBEAT with one), in the
/// loop's own thread: what is left to measure is the load generator itself (scheduling, policy,
/// encoding every FRAME, decoding every RESULT, histograms). `stalled` plays an edge that never answers.
final class InstantSinkTransport: LoadgenTransport {
    let connectionCount: Int
    var stalled = false
    /// Answer every `busyEvery`-th FRAME with ERROR BUSY instead of a RESULT (0: never): an edge that is full.
    var busyEvery = 0
    private var inbox: [LoadgenInbound] = []
    private let heartbeat = (try? HeartbeatMessage().encoded()) ?? []
    /// When set, `poll` advances this clock instead of sleeping (deterministic tests).
    let virtualClock: VirtualClock?
    private(set) var framesReceived = 0

    init(connections: Int, virtualClock: VirtualClock? = nil) {
        connectionCount = connections
        self.virtualClock = virtualClock
        inbox.reserveCapacity(1024)
    }

    func trySend(_ bytes: [UInt8], connection: Int) -> Bool {
        guard let header = try? MessageHeader.peek(bytes) else { return true }
        switch header.type {
        case "frame":
            framesReceived += 1
            guard !stalled, let c = header.cameraID, let s = header.sequence else { return true }
            if busyEvery > 0, framesReceived % busyEvery == 0 {
                let busy = ErrorMessage(sequence: s, cameraID: c, code: .busy, text: "sink is full", retryAfterMilliseconds: 100)
                if let reply = try? busy.encoded() { inbox.append(.reply(connection: connection, bytes: reply)) }
                return true
            }
            let result = ResultMessage(
                cameraID: c, sequence: s, classIndices: [1], scores: [1], queuedMilliseconds: 0, computeMilliseconds: 0,
                batchSize: 1, workerID: "sink")
            if let reply = try? result.encoded() { inbox.append(.reply(connection: connection, bytes: reply)) }
        case "heartbeat":
            if !stalled { inbox.append(.reply(connection: connection, bytes: heartbeat)) }
        default:
            break
        }
        return true
    }

    func poll(timeoutMicroseconds: UInt64, handle: (LoadgenInbound) -> Void) {
        if inbox.isEmpty {
            if let virtualClock {
                virtualClock.advance(by: timeoutMicroseconds)
            } else if timeoutMicroseconds > 0 {
                usleep(UInt32(min(timeoutMicroseconds, 100_000)))
            }
            return
        }
        let batch = inbox
        inbox.removeAll(keepingCapacity: true)
        for message in batch { handle(message) }
    }

    /// Queues a message as if it had arrived (a DIRECTIVE or STATS in tests).
    func inject(_ message: LoadgenInbound) { inbox.append(message) }

    func close() {}
}
