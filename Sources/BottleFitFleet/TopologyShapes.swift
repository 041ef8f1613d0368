import BottleFitEngine
import Foundation
import Yams

/// Checks that the models a topology names fit together before anything starts: a camera whose
/// head writes a bottleneck the workers' tail does not take gets every edge frame refused
/// (BAD_REQUEST) while the fleet reports that it "stopped cleanly".
extension TopologyFile {
    /// One model file's input and output shapes without the batch dimension (nil where unknown or
    /// symbolic). Whole models are not loaded here (a ResNet-50 is 110 MB): the camera checks its
    /// head against its whole model itself when it starts.
    struct Signature {
        var input: [Int]?
        var output: [Int]?
    }

    static func checkShapes(_ t: Topology, base: URL, path: String, node: Yams.Node?) throws(TopologyError) {
        var cache: [String: Signature] = [:]
        // A file the engine cannot load is left to the role that loads it: it fails at start and
        // the fleet stops with its message; only shapes are checked here.
        func signature(_ value: String) -> Signature {
            let resolved = (value.hasPrefix("/") ? URL(fileURLWithPath: value) : base.appendingPathComponent(value)).standardizedFileURL.path
            if let known = cache[resolved] { return known }
            guard let graph = try? ONNXImporter.load(contentsOf: URL(fileURLWithPath: resolved)) else { return Signature() }
            func dims(_ v: ValueInfo?) -> [Int]? {
                guard let shape = v?.shape, shape.count >= 1 else { return nil }
                var out: [Int] = []
                for d in shape.dropFirst() { guard case .fixed(let n) = d else { return nil }; out.append(n) }
                return out
            }
            let s = Signature(input: dims(graph.inputs.first), output: dims(graph.outputs.first))
            cache[resolved] = s
            return s
        }
        func text(_ d: [Int]) -> String { d.map(String.init).joined(separator: "x") }
        // What the workers take for each model: each tail's input and file.
        var tails: [String: [(input: [Int]?, file: String)]] = [:]
        for w in t.workers {
            for (model, files) in w.models {
                if let file = files.tail { tails[model, default: []].append((signature(file).input, file)) }
            }
        }
        // (A camera of a model no worker serves is refused by `plan`.)
        for cam in t.cameras where cam.mode == "split" {
            guard let head = cam.head, let served = tails[cam.model] else { continue }
            let headAt = cam.origin + [AnyKey(stringValue: "head")]
            let h = signature(head)
            for tail in served {
                if let out = h.output, let input = tail.input, out != input {
                    throw TopologyError("""
                        \(locate(headAt, path: path, node: node))\(head) outputs \(text(out)) but the workers' tail \(tail.file) for \
                        model '\(cam.model)' takes \(text(input)): every edge frame would be refused (BAD_REQUEST)
                        """)
                }
            }
        }
    }
}
