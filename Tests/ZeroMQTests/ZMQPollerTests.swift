import Foundation
import Testing
import ZeroMQ
import BottleFitTestSupport

@Suite(.blocking) struct ZMQPollerTests {
    let context: ZMQContext

    init() throws { context = try ZMQContext() }

    @Test func pollTimesOutWhenNothingIsReady() throws {
        let a = try ZMQSocket(context, type: .dealer, linger: 0)
        let b = try ZMQSocket(context, type: .pull, linger: 0)
        try a.bind("inproc://poll-\(UUID().uuidString)")
        try b.bind("inproc://poll-\(UUID().uuidString)")
        let poller = ZMQPoller()
        try poller.add(a)
        try poller.add(b)
        let clock = ContinuousClock()
        let start = clock.now
        #expect(try poller.poll(timeout: .milliseconds(50)) == 0)
        #expect(clock.now - start >= .milliseconds(45))
        #expect(poller.events(at: 0).isEmpty && poller.events(at: 1).isEmpty)
        #expect(try poller.poll(timeout: .zero) == 0)
    }

    @Test func pollReportsTheReadySocket() throws {
        let endpoint = "inproc://poll-\(UUID().uuidString)"
        let pull = try ZMQSocket(context, type: .pull, linger: 0)
        try pull.bind(endpoint)
        let idle = try ZMQSocket(context, type: .dealer, linger: 0)
        let push = try ZMQSocket(context, type: .push, linger: 0)
        try push.connect(endpoint)
        let poller = ZMQPoller()
        try poller.add(idle)
        let index = try poller.add(pull)
        try push.send([Array("work".utf8)])
        #expect(try poller.poll(timeout: .seconds(5)) == 1)
        #expect(poller.events(at: index) == .readable)
        #expect(poller.events(for: pull).contains(.readable))
        #expect(poller.events(for: idle).isEmpty)
        #expect(try pull.tryReceive() == [Array("work".utf8)])
    }

    @Test func pollForWritability() throws {
        let endpoint = "inproc://poll-\(UUID().uuidString)"
        let pull = try ZMQSocket(context, type: .pull, linger: 0)
        try pull.bind(endpoint)
        let push = try ZMQSocket(context, type: .push, linger: 0)
        try push.connect(endpoint)
        let poller = ZMQPoller()
        try poller.add(push, events: .writable)
        #expect(try poller.poll(timeout: .seconds(5)) == 1)
        #expect(poller.events(for: push) == .writable)
    }

    @Test func closedSocketsCannotBePolled() throws {
        let socket = try ZMQSocket(context, type: .dealer, linger: 0)
        let poller = ZMQPoller()
        try poller.add(socket)
        try socket.close()
        #expect(throws: ZMQError.self) { _ = try poller.poll(timeout: .zero) }
    }

    /// The intended pattern: a loop on a dedicated thread owns its socket and polls with a bounded
    /// timeout; other threads talk to it through inproc and stop it by shutting the context down.
    @Test func socketOwnedByADedicatedThread() throws {
        let context = try ZMQContext()
        let endpoint = "inproc://echo-\(UUID().uuidString)"
        let ready = DispatchSemaphore(value: 0)
        let finished = DispatchSemaphore(value: 0)
        let outcome = LoopOutcome()
        let thread = Thread {
            defer { finished.signal() }
            do {
                let router = try ZMQSocket(context, type: .router, linger: 0)
                try router.bind(endpoint)
                ready.signal()
                let poller = ZMQPoller()
                try poller.add(router)
                while true {
                    guard try poller.poll(timeout: .milliseconds(100)) > 0 else { continue }
                    while let request = try router.tryReceive() { try router.send(request) }
                }
            } catch {
                // ETERM from the shutdown below is how the loop is meant to end.
                let terminated = (error as? ZMQError)?.isTerminated == true
                outcome.set(terminated ? nil : "\(error)")
                if !terminated { ready.signal() }
            }
        }
        thread.start()
        ready.wait()
        do {
            let dealer = try ZMQSocket(context, type: .dealer, linger: 0)
            try dealer.setOption(.receiveTimeout, 5000)
            try dealer.connect(endpoint)
            for i in 0..<20 {
                try dealer.send([[], Array("ping \(i)".utf8)])
                #expect(try dealer.receive() == [[], Array("ping \(i)".utf8)])
            }
        }
        try context.shutdown()
        #expect(finished.wait(timeout: .now() + 10) == .success)
        #expect(outcome.get() == nil)
    }
}

/// The error a loop thread ended with, read by the test after the thread is done.
/// `@unchecked Sendable`: every access holds the lock.
final class LoopOutcome: @unchecked Sendable {
    private let lock = NSLock()
    private var error: String?

    func set(_ value: String?) { lock.withLock { error = value } }
    func get() -> String? { lock.withLock { error } }
}
