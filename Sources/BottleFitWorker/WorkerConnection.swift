import BottleFitProtocol
import BottleFitSecurity
import ZeroMQ

/// The worker's DEALER to the broker's backend and the envelopes of protocol.md section 9.
///
/// One connection is one socket: reconnecting makes a new one, so the broker sees a new
/// routing id and the READY that follows replaces whatever it knew. Owned by the loop thread.
final class WorkerConnection {
    let socket: ZMQSocket
    let limits: ProtocolLimits
    /// Polls `socket` alone; made once per connection so a turn of the loop allocates none.
    private let poller = ZMQPoller()
    /// READY is not yet queued: with `ZMQ_IMMEDIATE` it waits for the TCP connection, so the
    /// loop retries it every turn (and sends nothing else first).
    var readyPending = true
    /// Last time anything was sent or tried (a heartbeat is due `interval` later). A failed try
    /// counts too: retrying at once would not help, and would spin the loop while the broker is away.
    private(set) var lastSent: ContinuousClock.Instant
    /// Last time anything arrived from the broker (liveness runs from here).
    private(set) var lastHeard: ContinuousClock.Instant

    /// Creates and connects the socket. Every option of the worker's socket is set here, so
    /// CURVE (when configured) is set here too.
    init(context: ZMQContext, endpoint: String, limits: ProtocolLimits, curve: CurveClient?) throws(ZMQError) {
        socket = try ZMQSocket(context, type: .dealer, linger: 1000)
        try curve?.apply(to: socket)
        // Nothing is queued for a broker that is not connected: sends say "would block" instead.
        try socket.setOption(.immediate, true)
        // libzmq drops a peer that sends more than a whole message may hold, before allocating.
        try socket.setOption(.maxMessageSize, Int64(limits.maxMessageBytes))
        try socket.connect(endpoint)
        try poller.add(socket)
        self.limits = limits
        let now = ContinuousClock.now
        lastSent = now
        lastHeard = now
    }

    /// Waits until a message is waiting or `timeout` passes.
    func wait(timeout: Duration) throws(ZMQError) {
        _ = try poller.poll(timeout: timeout)
    }

    /// Inbound messages as the DEALER sees them.
    enum Inbound {
        /// `[empty, msg]`: a message for the worker itself.
        case control([UInt8])
        /// `[empty, camera-rid, empty, FRAME]`: work; the route goes back in the answer.
        case work(route: [UInt8], body: [UInt8])
        /// Any other layout: discarded and counted.
        case malformed
    }

    /// The next waiting message, or `nil` if none. Any message counts as a sign of life.
    func receive() throws(ZMQError) -> Inbound? {
        let frames: [[UInt8]]?
        do throws(ZMQError) {
            // Six frames is room for the largest valid envelope; more is malformed.
            frames = try socket.tryReceive(limits: ZMQReceiveLimits(maxFrames: 6, maxBytes: limits.maxMessageBytes + 1024))
        } catch where error.isMessageTooLarge {
            lastHeard = .now
            return .malformed
        }
        guard let frames else { return nil }
        lastHeard = .now
        switch frames.count {
        case 2 where frames[0].isEmpty: return .control(frames[1])
        case 4 where frames[0].isEmpty && frames[2].isEmpty && !frames[1].isEmpty: return .work(route: frames[1], body: frames[3])
        default: return .malformed
        }
    }

    /// Sends `[empty, msg]`. Returns false if it could not be queued (no broker connection).
    func sendControl(_ message: Message) throws(ZMQError) -> Bool {
        guard let bytes = try? message.encoded(limits: limits) else { return false }
        return try send([[], bytes])
    }

    /// Sends `[empty, camera-rid, empty, msg]`, the answer to a work message.
    func sendAnswer(route: [UInt8], _ bytes: [UInt8]) throws(ZMQError) -> Bool {
        try send([[], route, [], bytes])
    }

    private func send(_ frames: [[UInt8]]) throws(ZMQError) -> Bool {
        // Never block the loop on a vanished broker: a message that cannot be queued is dropped.
        lastSent = .now
        return try socket.trySend(frames)
    }

    /// Treats the broker as already silent for a long time (it said DISCONNECT), so the loop
    /// reconnects on its next turn instead of waiting for liveness to lapse.
    func markSilent() { lastHeard = .now - .seconds(86_400) }

    /// Closes the socket; `linger` ms for messages still queued (0 when the broker is dead).
    func close(linger: Int32) {
        try? socket.setOption(.linger, linger)
        try? socket.close()
    }
}
