import Foundation
import Testing
import ZeroMQ
import BottleFitTestSupport

/// Messages a DEALER has received but not yet read when its peer closes the connection stay
/// readable, with `ZMQ_IMMEDIATE` (which terminates the connection's pipe at once on a
/// disconnect) as without: libzmq's socket end of the pipe still waits for the application to
/// read what it holds. So a peer's goodbyes (the broker's BUSY and DISCONNECT at shutdown) are
/// lost only if they never leave the sender (docs/protocol.md section 10).
@Suite(.blocking) struct ImmediateDisconnectTests {
    /// Returns how many of 5 messages the DEALER could read after it saw the disconnection.
    func unreadAfterDisconnect(immediate: Bool) throws -> Int {
        let context = try ZMQContext()
        let router = try ZMQSocket(context, type: .router, linger: 1000)
        try router.bind("tcp://127.0.0.1:*")
        let endpoint = try router.option(.lastEndpoint)
        let dealer = try ZMQSocket(context, type: .dealer, linger: 0)
        try dealer.setOption(.immediate, immediate)
        let monitor = "inproc://immediate-\(UUID().uuidString.prefix(8))"
        try dealer.monitor(monitor, events: [.disconnected])
        let events = try ZMQSocket(context, type: .pair, linger: 0)
        try events.connect(monitor)
        try dealer.connect(endpoint)
        try dealer.setOption(.sendTimeout, 10_000)
        try dealer.send([Array("hello".utf8)])
        try router.setOption(.receiveTimeout, 60_000)
        let hello = try router.receive()
        for i in 0..<5 { try router.send([hello[0], Array("goodbye \(i)".utf8)]) }
        try router.close()  // flushed within the linger, then the connection closes
        try events.setOption(.receiveTimeout, 60_000)
        // Wait for the event, not for time: the connection is gone once the monitor says so.
        while true {
            guard let event = ZMQMonitorEvent(frames: try events.receive()) else { continue }
            if event.event == .disconnected { break }
        }
        var read = 0
        while try dealer.tryReceive() != nil { read += 1 }
        return read
    }

    @Test(arguments: [false, true]) func unreadMessagesSurviveTheDisconnection(immediate: Bool) throws {
        #expect(try unreadAfterDisconnect(immediate: immediate) == 5)
    }
}
