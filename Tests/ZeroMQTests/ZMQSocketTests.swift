import Foundation
import Testing
import ZeroMQ
import BottleFitTestSupport

/// A ROUTER/DEALER pair on one endpoint, both owned by the calling test.
struct RouterDealerPair {
    let router: ZMQSocket
    let dealer: ZMQSocket

    init(_ context: ZMQContext, bind endpoint: String, dealerID: [UInt8] = Array("cam-1".utf8)) throws {
        router = try ZMQSocket(context, type: .router, linger: 0)
        try router.setOption(.receiveTimeout, 5000)  // A broken test fails instead of hanging.
        try router.setOption(.routerMandatory, true)
        try router.bind(endpoint)
        dealer = try ZMQSocket(context, type: .dealer, linger: 0)
        try dealer.setOption(.receiveTimeout, 5000)
        try dealer.setOption(.routingID, dealerID)
        try dealer.connect(try router.option(.lastEndpoint))
    }

    /// The camera ↔ broker envelope: the DEALER sends [empty, body]; the ROUTER sees [id, empty, body].
    func roundTrip(_ body: [UInt8], dealerID: [UInt8] = Array("cam-1".utf8)) throws {
        try dealer.send([[], body])
        let request = try router.receive()
        #expect(request == [dealerID, [], body])
        try router.send([request[0], [], Array(body.reversed())])
        #expect(try dealer.receive() == [[], Array(body.reversed())])
    }
}

@Suite(.blocking) struct ZMQSocketTests {
    let context: ZMQContext

    init() throws { context = try ZMQContext() }

    static func uniqueName() -> String { "bottlefit-test-\(UUID().uuidString)" }

    @Test func routerDealerOverInproc() throws {
        let pair = try RouterDealerPair(context, bind: "inproc://\(Self.uniqueName())")
        try pair.roundTrip(Array("hello".utf8))
        try pair.roundTrip([])
        try pair.roundTrip((0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0) })
    }

    @Test func routerDealerOverIPC() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(Self.uniqueName())
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let pair = try RouterDealerPair(context, bind: "ipc://\(directory.path)/broker.sock")
        try pair.roundTrip(Array("over ipc".utf8))
    }

    @Test func routerDealerOverLoopbackTCP() throws {
        let pair = try RouterDealerPair(context, bind: "tcp://127.0.0.1:*")
        let endpoint = try pair.router.option(.lastEndpoint)
        #expect(endpoint.hasPrefix("tcp://127.0.0.1:"))
        try pair.roundTrip(Array("over tcp".utf8))
        try pair.roundTrip(Array(repeating: 0xab, count: 100_000))
    }

    @Test func manyFramesArriveInOrder() throws {
        let pair = try RouterDealerPair(context, bind: "inproc://\(Self.uniqueName())")
        let frames = (0..<10).map { [UInt8]("frame \($0)".utf8) }
        try pair.dealer.send(frames)
        #expect(try pair.router.receive() == [Array("cam-1".utf8)] + frames)
    }

    @Test func receiveGuardsDiscardTheWholeMessage() throws {
        let pair = try RouterDealerPair(context, bind: "inproc://\(Self.uniqueName())")
        try pair.dealer.send((0..<6).map { [UInt8(truncatingIfNeeded: $0)] })
        try pair.dealer.send([Array(repeating: 1, count: 2000)])
        try pair.dealer.send([[], Array("next".utf8)])
        let tooManyFrames = #expect(throws: ZMQError.self) {
            _ = try pair.router.receive(limits: ZMQReceiveLimits(maxFrames: 4, maxBytes: 1 << 20))
        }
        #expect(tooManyFrames?.isMessageTooLarge == true)
        let tooManyBytes = #expect(throws: ZMQError.self) {
            _ = try pair.router.receive(limits: ZMQReceiveLimits(maxFrames: 4, maxBytes: 1000))
        }
        #expect(tooManyBytes?.isMessageTooLarge == true)
        // The rest of the offending messages was drained: the next receive starts at a boundary.
        #expect(try pair.router.receive() == [Array("cam-1".utf8), [], Array("next".utf8)])
    }

    @Test func nonBlockingCallsSayWouldBlock() throws {
        let dealer = try ZMQSocket(context, type: .dealer, linger: 0)
        try dealer.bind("inproc://\(Self.uniqueName())")
        // Nothing to receive: nil, not an error.
        #expect(try dealer.tryReceive() == nil)
        // A DEALER with no peer cannot queue: false, nothing sent.
        #expect(try dealer.trySend([Array("lost".utf8)]) == false)
    }

    @Test func blockingReceiveTimesOutWithEAGAIN() throws {
        let dealer = try ZMQSocket(context, type: .dealer, linger: 0)
        try dealer.setOption(.receiveTimeout, 20)
        let error = #expect(throws: ZMQError.self) { _ = try dealer.receive() }
        #expect(error?.isWouldBlock == true)
    }

    @Test func badEndpointsAreErrors() throws {
        let socket = try ZMQSocket(context, type: .dealer, linger: 0)
        for endpoint in ["not-an-endpoint", "bogus://x", "tcp://127.0.0.1:notaport", ""] {
            let error = #expect(throws: ZMQError.self, "\(endpoint)") { try socket.connect(endpoint) }
            #expect(error?.errno != 0)
            #expect(error.map { !$0.message.isEmpty } == true)
        }
        let bindError = #expect(throws: ZMQError.self) { try socket.bind("bogus://x") }
        #expect(bindError?.operation.contains("bogus://x") == true)
        #expect(throws: ZMQError.self) { try socket.unbind("inproc://never-bound-\(Self.uniqueName())") }
    }

    @Test func unbindAndDisconnect() throws {
        let router = try ZMQSocket(context, type: .router, linger: 0)
        try router.bind("tcp://127.0.0.1:*")
        let endpoint = try router.option(.lastEndpoint)
        let dealer = try ZMQSocket(context, type: .dealer, linger: 0)
        try dealer.connect(endpoint)
        try dealer.disconnect(endpoint)
        #expect(throws: ZMQError.self) { try dealer.disconnect(endpoint) }
        try router.unbind(endpoint)
        #expect(throws: ZMQError.self) { try router.unbind(endpoint) }
    }

    @Test func routerMandatoryReportsUnknownPeers() throws {
        let router = try ZMQSocket(context, type: .router, linger: 0)
        try router.setOption(.routerMandatory, true)
        try router.bind("inproc://\(Self.uniqueName())")
        let error = #expect(throws: ZMQError.self) { try router.send([Array("nobody".utf8), [], [1]]) }
        #expect(error?.isHostUnreachable == true)
    }

    @Test func optionsRoundTrip() throws {
        let socket = try ZMQSocket(context, type: .router, linger: 250)
        #expect(try socket.option(.linger) == 250)
        #expect(try socket.option(.type) == ZMQSocketType.router.rawValue)
        try socket.setOption(.sendHighWaterMark, 77)
        try socket.setOption(.receiveHighWaterMark, 88)
        try socket.setOption(.maxMessageSize, 4 << 20)
        try socket.setOption(.routingID, [1, 2, 3])
        try socket.setOption(.immediate, true)
        try socket.setOption(.heartbeatInterval, 1000)
        try socket.setOption(.heartbeatTimeout, 3000)
        try socket.setOption(.heartbeatTTL, 3000)
        #expect(try socket.option(.sendHighWaterMark) == 77)
        #expect(try socket.option(.receiveHighWaterMark) == 88)
        #expect(try socket.option(.maxMessageSize) == 4 << 20)
        #expect(try socket.option(.routingID) == [1, 2, 3])
        #expect(try socket.option(.immediate) == true)
        #expect(try socket.option(.heartbeatInterval) == 1000)
        #expect(try socket.option(.receiveMore) == false)
        // Write-only options fail on read with a typed error rather than returning nonsense.
        #expect(throws: ZMQError.self) { _ = try socket.option(.routerMandatory) }
    }

    @Test func closedSocketsRefuseWork() throws {
        let socket = try ZMQSocket(context, type: .dealer)
        try socket.close()
        try socket.close()  // Idempotent.
        #expect(socket.isClosed)
        #expect(throws: ZMQError.self) { try socket.connect("inproc://x") }
        #expect(throws: ZMQError.self) { _ = try socket.tryReceive() }
    }

    @Test func shutdownMakesBlockingCallsFailWithETERM() throws {
        let socket = try ZMQSocket(context, type: .dealer, linger: 0)
        try context.shutdown()
        let error = #expect(throws: ZMQError.self) { _ = try socket.receive() }
        #expect(error?.isTerminated == true)
    }

    @Test func publishSubscribeFiltersByTopic() throws {
        let endpoint = "inproc://\(Self.uniqueName())"
        let publisher = try ZMQSocket(context, type: .pub, linger: 0)
        try publisher.bind(endpoint)
        let subscriber = try ZMQSocket(context, type: .sub, linger: 0)
        try subscriber.setOption(.subscribe, Array("stats".utf8))
        try subscriber.connect(endpoint)
        let poller = ZMQPoller()
        try poller.add(subscriber)
        // Subscriptions reach the publisher asynchronously: publish until one arrives (bounded).
        var received: [[UInt8]]?
        for _ in 0..<200 where received == nil {
            try publisher.send([Array("directive".utf8), [0]])
            try publisher.send([Array("stats".utf8), [1]])
            if try poller.poll(timeout: .milliseconds(10)) > 0 { received = try subscriber.tryReceive() }
        }
        #expect(received == [Array("stats".utf8), [1]])
        while let next = try subscriber.tryReceive() { #expect(next[0] == Array("stats".utf8)) }
    }

    /// CURVE is configured with four options, so turning encryption on is one change where sockets are made.
    @Test(.enabled(if: ZMQContext.has("curve"))) func curveEncryptedRoundTrip() throws {
        let server = try ZMQCurveKeyPair.generate()
        let client = try ZMQCurveKeyPair.generate()
        #expect(server.publicKey.utf8.count == 40 && server.secretKey.utf8.count == 40)
        let router = try ZMQSocket(context, type: .router, linger: 0)
        try router.setOption(.curveServer, true)
        try router.setOption(.curveSecretKey, server.secretKey)
        try router.setOption(.receiveTimeout, 5000)
        try router.bind("tcp://127.0.0.1:*")
        let dealer = try ZMQSocket(context, type: .dealer, linger: 0)
        try dealer.setOption(.curveServerKey, server.publicKey)
        try dealer.setOption(.curvePublicKey, client.publicKey)
        try dealer.setOption(.curveSecretKey, client.secretKey)
        try dealer.setOption(.receiveTimeout, 5000)
        try dealer.connect(try router.option(.lastEndpoint))
        try dealer.send([[], Array("secret".utf8)])
        let request = try router.receive()
        #expect(Array(request.dropFirst()) == [[], Array("secret".utf8)])
        try router.send(request)
        #expect(try dealer.receive() == [[], Array("secret".utf8)])

        // A client that does not know the server's key never gets through.
        let stranger = try ZMQSocket(context, type: .dealer, linger: 0)
        let wrong = try ZMQCurveKeyPair.generate()
        try stranger.setOption(.curveServerKey, wrong.publicKey)
        try stranger.setOption(.curvePublicKey, client.publicKey)
        try stranger.setOption(.curveSecretKey, client.secretKey)
        try stranger.connect(try router.option(.lastEndpoint))
        _ = try stranger.trySend([[], Array("let me in".utf8)])
        let poller = ZMQPoller()
        try poller.add(router)
        #expect(try poller.poll(timeout: .milliseconds(200)) == 0)
    }
}
