import BottleFitTestSupport
import BottleFitCore
import BottleFitProtocol
import Testing

@Suite struct RoundTripTests {
    @Test(arguments: Fixtures.all.indices)
    func encodesExactlyTheDocumentedBytes(index: Int) throws {
        // The hand-built bytes follow docs/protocol.md with shortest encodings, as msgpack-c writes them.
        let (message, hand) = Fixtures.all[index]
        #expect(try message.encoded() == hand.bytes, "\(message.type)")
    }

    @Test(arguments: Fixtures.all.indices)
    func decodesHandBuiltBytes(index: Int) throws {
        let (message, hand) = Fixtures.all[index]
        #expect(try Message.decode(hand.bytes) == message)
    }

    @Test(arguments: Fixtures.all.indices)
    func roundTrips(index: Int) throws {
        let message = Fixtures.all[index].0
        let bytes = try message.encoded()
        #expect(try Message.decode(bytes) == message)
        #expect(message.type.rawValue == (try MessageHeader.peek(bytes).type))
    }

    @Test func everyTypeHasAFixture() {
        #expect(Set(Fixtures.all.map(\.0.type)) == Set(MessageType.all))
    }

    @Test func typedDecodeChecksTheType() throws {
        let bytes = try Fixtures.result.encoded()
        #expect(try ResultMessage.decode(bytes) == Fixtures.result)
        #expect(throws: ProtocolError.unexpectedType(expected: "frame", got: "result")) {
            try FrameMessage.decode(bytes)
        }
    }

    @Test func realBottleneckTravelsAsOneBin() throws {
        // 12 x 29 x 29 uint8 = 10,092 bytes, as BottleFit's ResNet head produces for C = 12.
        var rng = SeededGenerator(seed: 7)
        let values = (0..<12 * 29 * 29).map { _ in rng.nextNormal() }
        let q = try BottleneckQuantizer().quantize(Tensor(shape: [12, 29, 29], floats: values))
        let frame = FrameMessage(
            cameraID: "cam-7", sequence: .max, model: "resnet50-bottlefit-c12", payload: .bottleneck(q),
            deadline: .max, sentAt: 0)
        let bytes = try frame.encoded()
        // bin16 header (0xc5, length 0x276c) immediately followed by the payload.
        let header: [UInt8] = [0xc5, 0x27, 0x6c]
        let start = try #require(bytes.indices.first { bytes[$0...].starts(with: header) })
        #expect(Array(bytes[(start + 3)..<(start + 3 + q.data.count)]) == q.data)
        #expect(bytes.count < q.data.count + 120, "overhead \(bytes.count - q.data.count) bytes")
        #expect(try FrameMessage.decode(bytes) == frame)
    }

    @Test func optionalFieldsMayBeAbsentOrNil() throws {
        let bare = ErrorMessage(sequence: nil, cameraID: nil, code: .badRequest, text: "")
        #expect(try ErrorMessage.decode(bare.encoded()) == bare)
        let withNils = HandMessage(fields: [
            ("v", .uint(1)), ("t", .str("error")), ("s", .null), ("c", .null), ("e", .str("BAD_REQUEST")),
            ("m", .str("")), ("ra", .null),
        ])
        #expect(try ErrorMessage.decode(withNils.bytes) == bare)
        #expect(try DisconnectMessage.decode(DisconnectMessage().encoded()) == DisconnectMessage())
        let noLabel = Fixtures.handFrame.removing("lb")
        var expected = Fixtures.frame
        expected.label = nil
        #expect(try FrameMessage.decode(noLabel.bytes) == expected)
    }

    @Test func unknownKeysAndKeyOrderDoNotMatter() throws {
        let extended = HandMessage(fields: Fixtures.handResult.fields.reversed() + [("zz", .array([.str("future")]))])
        #expect(try ResultMessage.decode(extended.bytes) == Fixtures.result)
    }

    @Test func numbersAcceptAnyEncodingOfTheirValue() throws {
        // Integers for floats (some encoders write 1.0 as 1), float64 for float32, wide ints for small ones.
        let hand = Fixtures.handFrame
            .replacing("qs", with: .f64(0.0625))
            .replacing("s", with: .raw([0xcf, 0, 0, 0, 0, 0, 0, 0, 42]))
            .replacing("qz", with: .raw([0xcd, 0, 17]))
        #expect(try FrameMessage.decode(hand.bytes) == Fixtures.frame)
        let intScale = Fixtures.handFrame.replacing("qs", with: .uint(2))
        guard case .bottleneck(let q) = try FrameMessage.decode(intScale.bytes).payload else {
            Issue.record("expected a bottleneck")
            return
        }
        #expect(q.parameters.scale == 2)
    }

    @Test func unknownErrorCodesArePreserved() throws {
        let hand = Fixtures.handError.replacing("e", with: .str("QUOTA_EXCEEDED"))
        #expect(try ErrorMessage.decode(hand.bytes).code == ErrorCode(rawValue: "QUOTA_EXCEEDED"))
    }

    @Test func headerOfAnyVersionCanBeReadToAnswerIt() throws {
        let future = Fixtures.handFrame.replacing("v", with: .uint(2)).adding("new", .str("field"))
        #expect(throws: ProtocolError.unsupportedVersion(got: 2)) { try Message.decode(future.bytes) }
        let header = try MessageHeader.peek(future.bytes)
        #expect(header == MessageHeader(version: 2, type: "frame", sequence: 42, cameraID: "cam-0001"))
        let reply = ErrorMessage(replyingTo: .unsupportedVersion(got: 2), header: header)
        #expect(reply.code == .unsupportedVersion)
        #expect(reply.sequence == 42 && reply.cameraID == "cam-0001")
        #expect(try ErrorMessage.decode(reply.encoded()) == reply)
    }

    @Test func errorRepliesTruncateLongTextOnCharacterBoundaries() throws {
        var limits = ProtocolLimits()
        limits.maxTextBytes = 10
        let reply = ErrorMessage(replyingTo: .unknownType("ééééééééé"), header: nil, limits: limits)
        #expect(reply.text.utf8.count <= 10)
        #expect(reply.code == .badRequest)
        #expect(try ErrorMessage.decode(reply.encoded(limits: limits), limits: limits) == reply)
    }

    @Test func fleetPositionIsStableAndFractionsNest() {
        // The test vectors of docs/protocol.md (computed independently in Python).
        #expect(DirectiveMessage.fleetPosition(of: "a") == Double(UInt64(0x82a2_a958_a9be_ce5b) >> 11) * 0x1p-53)
        #expect(DirectiveMessage.fleetPosition(of: "") == Double(UInt64(0xefd0_1f60_ba99_2926) >> 11) * 0x1p-53)
        #expect(DirectiveMessage.fleetPosition(of: "cam-0001") == Double(UInt64(0xc077_89bb_cc85_d004) >> 11) * 0x1p-53)
        let cameras = (0..<1000).map { "cam-\($0)" }
        let quarter = Set(cameras.filter { DirectiveMessage.Target.fraction(0.25).includes(cameraID: $0) })
        let half = Set(cameras.filter { DirectiveMessage.Target.fraction(0.5).includes(cameraID: $0) })
        #expect(quarter.isSubset(of: half))
        #expect((150...350).contains(quarter.count), "\(quarter.count) of 1000 in a quarter")
        #expect(cameras.allSatisfy { DirectiveMessage.Target.fraction(1).includes(cameraID: $0) })
        #expect(!cameras.contains { DirectiveMessage.Target.fraction(0).includes(cameraID: $0) })
        #expect(DirectiveMessage.Target.cameras(["cam-1"]).includes(cameraID: "cam-1"))
        #expect(!DirectiveMessage.Target.cameras(["cam-1"]).includes(cameraID: "cam-2"))
    }
}
