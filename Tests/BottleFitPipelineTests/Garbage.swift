import BottleFitCore
import BottleFitProtocol
import BottleFitTestSupport
import Foundation

enum Garbage {
    /// A well-formed FRAME body from the protocol's own encoder, to corrupt.
    static func validFrame(camera: String, sequence: UInt64) -> [UInt8] {
        let now = UInt64(Date().timeIntervalSince1970 * 1000)
        let frame = FrameMessage(cameraID: camera, sequence: sequence, model: "tiny", payload: .jpeg([0xff, 0xd8, 0xff, 0xd9]),
                                 deadline: now + 60_000, sentAt: now)
        return (try? Message.frame(frame).encoded()) ?? [0xc1]
    }

    static func fields(version: UInt64 = 1, type: String = "frame", sequence: MP = .uint(9)) -> [(String, MP)] {
        [("v", .uint(version)), ("t", .str(type)), ("c", .str("garbage-cam")), ("s", sequence), ("m", .str("tiny")),
         ("k", .str("jpeg")), ("p", .bin([1, 2, 3])), ("dl", .uint(UInt64.max >> 1)), ("ts", .uint(1))]
    }

    /// Message bodies that are wrong in every way a peer could get them wrong.
    static func bodies(round: Int, rng: inout SeededGenerator) -> [[UInt8]] {
        let valid = validFrame(camera: "garbage-cam", sequence: UInt64(round))
        let random = (0..<(1 + Int(rng.next() % 300))).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let cut = 1 + Int(rng.next() % UInt64(max(1, valid.count - 1)))
        return [
            random,
            [],
            Array(valid.prefix(cut)),  // truncated msgpack
            MP.str("not a map").bytes,
            MP.array([.uint(1), .uint(2)]).bytes,
            MP.map(fields(sequence: .str("nine"))).bytes,  // wrong type
            MP.map(fields().map { $0.0 == "p" ? ($0.0, .array([.uint(1)])) : $0 }).bytes,
            MP.map(fields(version: 99)).bytes,  // unknown version
            MP.map(fields(version: 2, type: "heartbeat")).bytes,
            MP.map(fields(type: "teleport")).bytes,  // unknown type
            MP.map(fields(type: "result")).bytes,  // a type not valid from this peer
            MP.map(fields(type: "ready")).bytes,
            // Huge declared sizes with nothing behind them.
            MP.map(fields().map { $0.0 == "p" ? ($0.0, .raw([0xc6, 0x7f, 0xff, 0xff, 0xff, 1, 2])) : $0 }).bytes,
            [0xdd, 0xff, 0xff, 0xff, 0xff, 0x01],  // array32 of 4 billion
            [0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1, 0x76, 0x01],  // map32 of 4 billion
            [0xdb, 0xff, 0xff, 0xff, 0xf0, 0x41],  // str32 of 4 GB
            MP.map(fields().map { $0.0 == "c" ? ($0.0, .str(String(repeating: "x", count: 200))) : $0 }).bytes,
            valid + [0xc1, 0xc1],  // trailing junk
        ]
    }
}
