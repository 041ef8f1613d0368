import BottleFitCore
import BottleFitEngine

/// A 64-bit FNV-1a digest of everything in a graph that matters to a user: name, nodes
/// (in order, with sorted attributes), inputs, outputs, metadata, and every initializer's
/// name, shape and exact float bits. Two graphs with the same fingerprint are the same model.
enum GraphFingerprint {
    struct FNV1a {
        var state: UInt64 = 0xcbf2_9ce4_8422_2325
        mutating func add<S: Sequence>(bytes: S) where S.Element == UInt8 {
            for byte in bytes {
                state ^= UInt64(byte)
                state &*= 0x0000_0100_0000_01b3
            }
        }
        mutating func add(_ text: String) { add(bytes: text.utf8); add(bytes: [0]) }
        /// One word at a time (FNV-1a over 32-bit words rather than bytes: fast enough in debug builds).
        mutating func add(_ value: UInt32) {
            state ^= UInt64(value)
            state &*= 0x0000_0100_0000_01b3
        }
    }

    static func of(_ g: Graph) -> UInt64 {
        var h = FNV1a()
        h.add(g.name)
        h.add("opset \(g.opsetVersion)")
        for n in g.nodes {
            h.add("node \(n.name) \(n.opType) \(n.domain) \(n.inputs) \(n.outputs)")
            for key in n.attributes.keys.sorted() { h.add("\(key)=\(n.attributes[key]!)") }
        }
        for v in g.inputs { h.add("input \(v.name) \(v.elementType) \(v.shapeDescription)") }
        for v in g.outputs { h.add("output \(v.name) \(v.elementType) \(v.shapeDescription)") }
        for key in g.metadata.keys.sorted() { h.add("meta \(key)=\(g.metadata[key]!)") }
        for key in g.initializers.keys.sorted() {
            let t = g.initializers[key]!
            h.add("init \(key) \(t.elementType) \(t.shape)")
            t.floats?.withUnsafeBufferPointer { for f in $0 { h.add(f.bitPattern) } }
        }
        return h.state
    }
}
