import BottleFitCore
import BottleFitProtocol
import BottleFitTestSupport

/// Garbage for both broker sockets, each with what the broker must do about it.
enum Garbage {
    /// A valid FRAME's fields, to be broken one way or another.
    static func frameFields(camera: String = "bad-cam", sequence: UInt64 = 5, version: UInt64 = 1) -> [(String, MP)] {
        [
            ("v", .uint(version)), ("t", .str("frame")), ("c", .str(camera)), ("s", .uint(sequence)),
            ("m", .str("m")), ("k", .str("bottleneck")), ("p", .bin([1, 2, 3, 4])),
            ("sh", .array([.uint(1), .uint(2), .uint(2)])), ("qs", .f32(0.5)), ("qz", .uint(128)),
            ("dl", .uint(UInt64.max >> 1)), ("ts", .uint(1)),
        ]
    }

    static func replacing(_ key: String, with value: MP, in fields: [(String, MP)]) -> [(String, MP)] {
        fields.map { $0.0 == key ? ($0.0, value) : $0 }
    }

    /// Camera message bodies (sent as `[empty, body]`) and the ERROR code each must get back.
    static var frontendBodies: [(name: String, body: [UInt8], reply: ErrorCode)] {
        let valid = MP.map(frameFields()).bytes
        var rng = SeededGenerator(seed: 77)
        let random = (0..<64).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        return [
            ("random bytes", [0xc1] + random, .badRequest),
            ("empty body", [], .badRequest),
            ("truncated FRAME", Array(valid.prefix(valid.count - 3)), .badRequest),
            ("a string, not a map", MP.str("hello").bytes, .badRequest),
            ("sequence of the wrong type", MP.map(replacing("s", with: .str("five"), in: frameFields())).bytes, .badRequest),
            ("payload as an array", MP.map(replacing("p", with: .array([.uint(1)]), in: frameFields())).bytes, .badRequest),
            ("shape does not match the payload", MP.map(replacing("sh", with: .array([.uint(3), .uint(3)]), in: frameFields())).bytes, .badRequest),
            ("bin header claiming 4 GiB", MP.map(replacing("p", with: .raw([0xc6, 0xff, 0xff, 0xff, 0xff, 1, 2]), in: frameFields())).bytes, .tooLarge),
            ("array header claiming 4 billion", MP.map(replacing("sh", with: .raw([0xdd, 0xff, 0xff, 0xff, 0xff]), in: frameFields())).bytes, .tooLarge),
            ("payload over 4 MiB", MP.map(replacing("p", with: .bin([UInt8](repeating: 1, count: (4 << 20) + 1)), in: frameFields())).bytes, .tooLarge),
            ("version 2 FRAME", MP.map(frameFields(version: 2)).bytes, .unsupportedVersion),
            ("version 2 of an unknown type", MP.map([("v", .uint(2)), ("t", .str("frame2")), ("s", .uint(5))]).bytes, .unsupportedVersion),
            ("unknown type", MP.map([("v", .uint(1)), ("t", .str("gimme"))]).bytes, .badRequest),
            ("a RESULT from a camera", try! ResultMessage(
                cameraID: "bad-cam", sequence: 5, classIndices: [1], scores: [1], queuedMilliseconds: 0,
                computeMilliseconds: 0, batchSize: 1, workerID: "w").encoded(), .badRequest),
            ("a READY from a camera", try! ReadyMessage(workerID: "w", models: ["m"], credit: 1).encoded(), .badRequest),
        ]
    }

    /// Camera messages that are thrown away unanswered: an ERROR, a version-2 HEARTBEAT.
    static var frontendIgnored: [[UInt8]] {
        [
            try! ErrorMessage(sequence: 1, cameraID: "bad-cam", code: .internal, text: "?").encoded(),
            MP.map([("v", .uint(2)), ("t", .str("heartbeat"))]).bytes,
            MP.map([("v", .uint(1)), ("t", .str("error")), ("e", .uint(3))]).bytes,
        ]
    }
}
