import BottleFitTestSupport
import BottleFitCore
import BottleFitProtocol
import Testing

/// Untrusted bytes: every failure is a typed `ProtocolError`, never a trap or a huge allocation.
@Suite struct MalformedInputTests {
    func decodeError(_ bytes: [UInt8], limits: ProtocolLimits = .default) -> ProtocolError? {
        do {
            _ = try Message.decode(bytes, limits: limits)
            return nil
        } catch {
            return error
        }
    }

    @Test func randomBytesNeverCrash() {
        var rng = SeededGenerator(seed: 0xB0771E)
        var decoded = 0
        for _ in 0..<20_000 {
            let count = Int(rng.next() % 300)
            var bytes = (0..<count).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            // Half the time start with a map header, to get past the first check more often.
            if rng.next() % 2 == 0, !bytes.isEmpty { bytes[0] = 0x80 | UInt8(rng.next() % 16) }
            if decodeError(bytes) == nil { decoded += 1 }
        }
        #expect(decoded == 0)
    }

    @Test(arguments: Fixtures.all.indices)
    func mutatedMessagesNeverCrash(index: Int) throws {
        let valid = try Fixtures.all[index].0.encoded()
        var rng = SeededGenerator(seed: UInt64(index) + 1)
        for _ in 0..<2_000 {
            var bytes = valid
            for _ in 0...(rng.next() % 4) {
                bytes[Int(rng.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: rng.next())
            }
            // Either a typed error or a message that encodes again: nothing else is possible.
            if let message = try? Message.decode(bytes) {
                _ = try message.encoded()
            }
        }
    }

    @Test(arguments: Fixtures.all.indices)
    func everyTruncationIsReportedAsTruncated(index: Int) throws {
        let valid = try Fixtures.all[index].0.encoded()
        for length in 0..<valid.count {
            #expect(decodeError(Array(valid.prefix(length))) == .truncated, "prefix of \(length) bytes")
        }
    }

    @Test func trailingBytesAreRejected() throws {
        let valid = try Fixtures.credit.encoded()
        #expect(decodeError(valid + [0xc0, 0xc0]) == .trailingBytes(2))
    }

    @Test func hugeDeclaredSizesAreRejectedBeforeAllocating() {
        let u32max: [UInt8] = [0xff, 0xff, 0xff, 0xff]
        // A bin header claiming 4 GiB, at the top and as a FRAME's payload.
        #expect(decodeError([0xc6] + u32max) == .tooLarge(field: "declared length", limit: ProtocolLimits.default.maxMessageBytes))
        let lyingPayload = Fixtures.handFrame.replacing("p", with: .raw([0xc6] + u32max))
        #expect(decodeError(lyingPayload.bytes) == .tooLarge(field: "declared length", limit: ProtocolLimits.default.maxMessageBytes))
        // A payload that claims a bit more than is there is simply truncated.
        #expect(decodeError(Fixtures.handFrame.replacing("p", with: .raw([0xc6, 0, 1, 0, 0])).bytes) == .truncated)
        // Strings and ext values the same way.
        #expect(decodeError([0xdb] + u32max) == .tooLarge(field: "declared length", limit: ProtocolLimits.default.maxMessageBytes))
        #expect(decodeError([0xc9] + u32max + [1]) == .tooLarge(field: "declared length", limit: ProtocolLimits.default.maxMessageBytes))
        // Arrays and maps claiming 4 billion entries: msgpack-c would allocate for them up front.
        #expect(decodeError([0xdd] + u32max) == .tooLarge(field: "array length", limit: ProtocolLimits.default.maxArrayLength))
        #expect(decodeError([0xdf] + u32max) == .tooLarge(field: "map entries", limit: ProtocolLimits.default.maxMapEntries))
        // Within the limit but more entries than bytes left.
        #expect(decodeError([0xdc, 0x0f, 0xff, 1, 2, 3]) == .truncated)
        let lyingShape = Fixtures.handFrame.replacing("sh", with: .raw([0xdc, 0x0f, 0xff]))
        #expect(decodeError(lyingShape.bytes) == .truncated)
    }

    @Test func structuralLimitsHold() {
        // Deep nesting.
        let deep = [UInt8](repeating: 0x91, count: 100) + [0x01]
        #expect(decodeError(deep) == .tooLarge(field: "nesting depth", limit: 4))
        // Too many values overall, each container within its own limit.
        let many = MP.map([("x", .array((0..<4000).map { _ in .array([.uint(1), .uint(2), .uint(3), .uint(4)]) }))])
        #expect(decodeError(many.bytes) == .tooLarge(field: "values in message", limit: ProtocolLimits.default.maxObjects))
        // A message beyond maxMessageBytes is refused before it is even scanned.
        var small = ProtocolLimits()
        small.maxMessageBytes = 64
        #expect(decodeError(Fixtures.handFrame.bytes, limits: small) == .tooLarge(field: "message", limit: 64))
        // The reserved byte 0xc1.
        #expect(decodeError([0x81, 0xa1, 0x76, 0xc1]) == .malformed("reserved byte 0xc1 at offset 3"))
    }

    @Test func nonMapsAndBadKeysAreRejected() {
        #expect(decodeError(MP.array([.uint(1)]).bytes) == .notAMap)
        #expect(decodeError(MP.str("frame").bytes) == .notAMap)
        #expect(decodeError(Fixtures.handCredit.adding("n", .uint(4)).bytes) == .badKey("n appears twice"))
        let intKey = MP.anyMap([(.str("v"), .uint(1)), (.uint(5), .uint(1))])
        #expect(decodeError(intKey.bytes) == .badKey("key 1 is not a string"))
    }

    @Test func versionIsCheckedFirst() {
        #expect(decodeError(Fixtures.handCredit.replacing("v", with: .uint(2)).bytes) == .unsupportedVersion(got: 2))
        #expect(decodeError(Fixtures.handCredit.replacing("v", with: .uint(0)).bytes) == .unsupportedVersion(got: 0))
        #expect(decodeError(Fixtures.handCredit.replacing("v", with: .uint(.max)).bytes) == .unsupportedVersion(got: .max))
        // A future version may define types this one does not know: the version error comes first.
        let future = HandMessage(fields: [("v", .uint(3)), ("t", .str("teleport"))])
        #expect(decodeError(future.bytes) == .unsupportedVersion(got: 3))
        #expect(decodeError(future.replacing("v", with: .uint(1)).bytes) == .unknownType("teleport"))
        #expect(decodeError(Fixtures.handCredit.removing("v").bytes) == .missingField("v"))
        #expect(decodeError(Fixtures.handCredit.removing("t").bytes) == .missingField("t"))
        #expect(decodeError(Fixtures.handCredit.replacing("v", with: .str("1")).bytes) == .wrongType(field: "v", expected: "unsigned integer"))
        #expect(decodeError(Fixtures.handCredit.replacing("v", with: .int(-1)).bytes) == .invalidValue(field: "v", reason: "negative (-1)"))
    }

    /// A value of a different msgpack type than the field's.
    static func wrongValue(for value: MP) -> MP {
        switch value {
        case .str, .rawStr, .bin, .array, .map: .uint(7)
        default: .str("x")
        }
    }

    @Test(arguments: Fixtures.all.indices)
    func everyFieldRejectsAWrongType(index: Int) {
        let hand = Fixtures.all[index].1
        for (key, value) in hand.fields {
            let broken = hand.replacing(key, with: Self.wrongValue(for: value))
            guard case .wrongType(let field, _)? = decodeError(broken.bytes) else {
                Issue.record("\(key) in \(hand.fields[1].1): \(String(describing: decodeError(broken.bytes)))")
                continue
            }
            #expect(field == key)
        }
    }

    @Test(arguments: Fixtures.all.indices)
    func everyRequiredFieldIsRequired(index: Int) {
        let hand = Fixtures.all[index].1
        let type = Fixtures.all[index].0.type
        let optional: [MessageType: Set<String>] = [.frame: ["lb"], .error: ["s", "c", "ra"], .disconnect: ["r"], .heartbeat: ["lr"], .directive: ["es", "ef"]]
        for (key, _) in hand.fields {
            let error = decodeError(hand.removing(key).bytes)
            if key == "tc" || key == "tf" {
                #expect(error == .missingField("tc|tf"))
            } else if optional[type, default: []].contains(key) {
                #expect(error == nil, "\(key) of \(type) is optional")
            } else {
                #expect(error == .missingField(key), "\(key) of \(type)")
            }
        }
    }

    @Test func elementsAndNestedFieldsNameThemselves() {
        let badScore = Fixtures.handResult.replacing("ks", with: .array([.f32(1), .str("high"), .f32(0)]))
        #expect(decodeError(badScore.bytes) == .wrongType(field: "ks[1]", expected: "float"))
        let badWorker = Fixtures.handStats.replacing("wk", with: .array([.map([("w", .str("a")), ("cr", .str("2")), ("if", .uint(0))])]))
        #expect(decodeError(badWorker.bytes) == .wrongType(field: "wk[0].cr", expected: "unsigned integer"))
        let notAWorker = Fixtures.handStats.replacing("wk", with: .array([.uint(1)]))
        #expect(decodeError(notAWorker.bytes) == .wrongType(field: "wk[0]", expected: "map"))
        let numbersAsPayload = Fixtures.handFrame.replacing("p", with: .array(Fixtures.bottleneckData.map { .uint(UInt64($0)) }))
        #expect(decodeError(numbersAsPayload.bytes) == .wrongType(field: "p", expected: "bin"))
    }

    @Test func shapesMustMatchThePayload() {
        let f = Fixtures.handFrame
        #expect(decodeError(f.replacing("sh", with: .array([.uint(2), .uint(3), .uint(5)])).bytes)
            == .shapeMismatch(shape: [2, 3, 5], payloadBytes: 24))
        #expect(decodeError(f.replacing("sh", with: .array([])).bytes) == .invalidValue(field: "sh", reason: "empty shape"))
        #expect(decodeError(f.replacing("sh", with: .array([.uint(24), .uint(0)])).bytes)
            == .invalidValue(field: "sh[1]", reason: "0 is below 1"))
        #expect(decodeError(f.replacing("sh", with: .array([.int(-24)])).bytes)
            == .invalidValue(field: "sh[0]", reason: "negative (-24)"))
        #expect(decodeError(f.replacing("sh", with: .array(Array(repeating: .uint(1), count: 9))).bytes)
            == .tooLarge(field: "sh", limit: 8))
        #expect(decodeError(f.replacing("sh", with: .array(Array(repeating: .uint(1 << 20), count: 4))).bytes)
            == .tooLarge(field: "sh (element count)", limit: ProtocolLimits.default.maxShapeElements))
        #expect(decodeError(f.replacing("sh", with: .array([.uint(UInt64.max)])).bytes)
            == .invalidValue(field: "sh[0]", reason: "\(UInt64.max) exceeds \(ProtocolLimits.default.maxShapeElements)"))
        #expect(decodeError(f.replacing("sh", with: .array([.f32(24)])).bytes) == .wrongType(field: "sh[0]", expected: "unsigned integer"))
    }

    @Test func fieldLimitsAndDomainsHold() {
        var limits = ProtocolLimits()
        limits.maxPayloadBytes = 16
        #expect(decodeError(Fixtures.handFrame.bytes, limits: limits) == .tooLarge(field: "p", limit: 16))
        let longID = String(repeating: "c", count: 129)
        #expect(decodeError(Fixtures.handFrame.replacing("c", with: .str(longID)).bytes) == .tooLarge(field: "c", limit: 128))
        #expect(decodeError(Fixtures.handFrame.replacing("c", with: .str("")).bytes) == .invalidValue(field: "c", reason: "empty"))
        #expect(decodeError(Fixtures.handFrame.replacing("c", with: .rawStr([0x63, 0xff, 0xfe])).bytes)
            == .invalidValue(field: "c", reason: "not valid UTF-8"))
        #expect(decodeError(Fixtures.handFrame.replacing("qz", with: .uint(256)).bytes) == .invalidValue(field: "qz", reason: "256 exceeds 255"))
        #expect(decodeError(Fixtures.handFrame.replacing("qs", with: .f32(.nan)).bytes) == .invalidValue(field: "qs", reason: "not finite"))
        #expect(decodeError(Fixtures.handFrame.replacing("qs", with: .f64(1e300)).bytes)
            == .invalidValue(field: "qs", reason: "out of float32 range"))
        #expect(decodeError(Fixtures.handFrame.replacing("qs", with: .f32(-1)).bytes)
            == .invalidValue(field: "qs", reason: "scale must be finite and not negative"))
        #expect(decodeError(Fixtures.handFrame.replacing("k", with: .str("png")).bytes)
            == .invalidValue(field: "k", reason: "unknown kind \"png\" (expected bottleneck or jpeg)"))
        #expect(decodeError(Fixtures.handJPEGFrame.replacing("p", with: .bin([])).bytes) == .invalidValue(field: "p", reason: "empty JPEG"))
        let topK = MP.array((0..<1001).map { _ in .uint(1) })
        #expect(decodeError(Fixtures.handResult.replacing("ki", with: topK).bytes) == .tooLarge(field: "ki", limit: 1000))
        #expect(decodeError(Fixtures.handResult.replacing("ks", with: .array([.f32(1)])).bytes)
            == .invalidValue(field: "ks", reason: "1 scores for 3 classes"))
        #expect(decodeError(Fixtures.handResult.replacing("b", with: .uint(0)).bytes) == .invalidValue(field: "b", reason: "0 is below 1"))
        #expect(decodeError(Fixtures.handResult.replacing("qm", with: .f64(-1)).bytes)
            == .invalidValue(field: "qm", reason: "must be finite and not negative"))
        #expect(decodeError(Fixtures.handCredit.replacing("n", with: .uint(0)).bytes) == .invalidValue(field: "n", reason: "0 is below 1"))
        #expect(decodeError(Fixtures.handReady.replacing("ms", with: .array([])).bytes)
            == .invalidValue(field: "ms", reason: "a worker must serve at least one model"))
        #expect(decodeError(Fixtures.handFractionDirective.replacing("tf", with: .f64(1.5)).bytes)
            == .invalidValue(field: "tf", reason: "fraction 1.5 outside [0, 1]"))
        #expect(decodeError(Fixtures.handDirective.adding("tf", .f64(0.5)).bytes)
            == .invalidValue(field: "tc|tf", reason: "give either camera ids or a fraction, not both"))
        #expect(decodeError(Fixtures.handDirective.replacing("md", with: .str("offload")).bytes)
            == .invalidValue(field: "md", reason: "unknown mode \"offload\" (expected split or local)"))
        #expect(decodeError(Fixtures.handFloorDirective.replacing("ef", with: .f64(1.5)).bytes)
            == .invalidValue(field: "ef", reason: "edge floor 1.5 outside [0, 1]"))
        #expect(decodeError(Fixtures.handFloorDirective.adding("es", .f64(0.5)).bytes)
            == .invalidValue(field: "ef", reason: "edge floor 0.75 above the edge share 0.5"))
        #expect(decodeError(Fixtures.handFloorDirective.replacing("md", with: .str("local")).bytes)
            == .invalidValue(field: "ef", reason: "an edge floor goes with mode split only"))
        let longText = String(repeating: "x", count: 1025)
        #expect(decodeError(Fixtures.handError.replacing("m", with: .str(longText)).bytes) == .tooLarge(field: "m", limit: 1024))
    }

    @Test func encoderRefusesWhatDecodersWouldRefuse() throws {
        var frame = Fixtures.frame
        frame.payload = .bottleneck(QuantizedTensor(shape: [5, 5], data: [1, 2, 3], parameters: .init(scale: 1, zeroPoint: 0)))
        #expect(throws: ProtocolError.shapeMismatch(shape: [5, 5], payloadBytes: 3)) { try frame.encoded() }
        frame.cameraID = ""
        #expect(throws: ProtocolError.invalidValue(field: "c", reason: "empty")) { try frame.encoded() }
        let result = ResultMessage(cameraID: "c", sequence: 1, classIndices: [1, 2], scores: [1], queuedMilliseconds: 0,
                                   computeMilliseconds: 0, batchSize: 1, workerID: "w")
        #expect(throws: ProtocolError.invalidValue(field: "ks", reason: "1 scores for 2 classes")) { try result.encoded() }
        #expect(throws: ProtocolError.invalidValue(field: "n", reason: "credits 0 outside 1...65536")) {
            try CreditMessage(credits: 0).encoded()
        }
        var limits = ProtocolLimits()
        limits.maxMessageBytes = 40
        #expect(throws: ProtocolError.tooLarge(field: "message", limit: 40)) { try Fixtures.frame.encoded(limits: limits) }
    }
}
