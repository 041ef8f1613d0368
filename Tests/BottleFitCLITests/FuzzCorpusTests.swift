import BottleFitCore
import BottleFitEngine
import BottleFitImaging
import BottleFitLoadgen
import BottleFitProtocol
import Foundation
import Testing

/// Replays the committed fuzz corpus (Tests/Fuzz/corpus/TARGET/, scripts/fuzz) through the entry
/// points the fuzz targets call (Fuzz/Sources): every input decodes or throws, none traps. Files
/// named `seed-*` are valid inputs written by scripts/tools/fuzz-seeds.py and must decode; the
/// others are inputs libFuzzer found interesting (new coverage, or a crash since fixed).
@Suite struct FuzzCorpusTests {
    static let corpus = CLITests.root.appendingPathComponent("Tests/Fuzz/corpus")

    /// (file name, bytes) of every input of `target`.
    static func inputs(_ target: String) throws -> [(name: String, bytes: [UInt8])] {
        let folder = corpus.appendingPathComponent(target)
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
        return try names.map { ($0, [UInt8](try Data(contentsOf: folder.appendingPathComponent($0)))) }
    }

    /// Runs `decode` on every input of `target`; seeds must succeed.
    static func replay(_ target: String, minimum: Int, _ decode: ([UInt8]) throws -> Void) throws {
        let inputs = try inputs(target)
        #expect(inputs.count >= minimum, "\(target): only \(inputs.count) corpus files")
        for input in inputs {
            do { try decode(input.bytes) } catch {
                #expect(!input.name.hasPrefix("seed-"), "\(target)/\(input.name) is a seed but does not decode: \(error)")
            }
        }
    }

    @Test func protocolCorpus() throws {
        try Self.replay("protocol", minimum: 11) { bytes in
            let message = try Message.decode(bytes)
            // As the fuzz target checks: what decodes, encodes and decodes again.
            #expect(throws: Never.self) { _ = try Message.decode(try message.encoded()) }
        }
    }

    @Test func onnxCorpus() throws {
        try Self.replay("onnx", minimum: 5) { bytes in _ = try ONNXImporter.decode(Data(bytes)) }
    }

    @Test func npyCorpus() throws {
        try Self.replay("npy", minimum: 4) { bytes in _ = try NPY.decode(Data(bytes)) }
    }

    @Test func jpegCorpus() throws {
        try Self.replay("jpeg", minimum: 3) { bytes in
            _ = try? JPEGCodec.decode(bytes, channels: 1, maxPixels: 1 << 22, toleratingCorruptData: true)
            _ = try JPEGCodec.decode(bytes, channels: 3, maxPixels: 1 << 22)
        }
    }

    @Test func scenarioCorpus() throws {
        try Self.replay("scenario", minimum: 3) { bytes in
            let text = String(decoding: bytes, as: UTF8.self)
            // A seed is either a scenario or a schedule: it must be one of them.
            do { _ = try LoadgenScenario.parse(text, file: "corpus.yaml") } catch {
                _ = try LoadShape.parseSchedule(text, path: "corpus.schedule")
            }
        }
    }
}
