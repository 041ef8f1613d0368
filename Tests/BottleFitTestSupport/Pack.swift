/// A msgpack value written by hand (from the msgpack specification), to build messages that the
/// protocol's own encoder refuses to write: wrong types, other versions, lying headers.
/// Shared by the test targets that feed garbage to real sockets (broker, pipeline).
public indirect enum Pack: Sendable {
    case uint(UInt64)
    case str(String)
    case bin([UInt8])
    case f32(Float)
    case array([Pack])
    case map([(String, Pack)])
    /// Bytes emitted as they are.
    case raw([UInt8])

    public var bytes: [UInt8] {
        var out: [UInt8] = []
        append(to: &out)
        return out
    }

    private static func be(_ v: UInt64, _ width: Int) -> [UInt8] {
        (0..<width).reversed().map { UInt8(truncatingIfNeeded: v >> (8 * UInt64($0))) }
    }

    private func append(to out: inout [UInt8]) {
        switch self {
        case .uint(let v):
            if v < 0x80 { out.append(UInt8(v)) } else { out += [0xcf] + Self.be(v, 8) }
        case .str(let s):
            let b = Array(s.utf8)
            if b.count < 32 { out.append(0xa0 | UInt8(b.count)) } else { out += [0xd9, UInt8(b.count)] }
            out += b
        case .bin(let b):
            out += [0xc6] + Self.be(UInt64(b.count), 4) + b
        case .f32(let f):
            out += [0xca] + Self.be(UInt64(f.bitPattern), 4)
        case .array(let items):
            out.append(0x90 | UInt8(items.count))
            for item in items { item.append(to: &out) }
        case .map(let entries):
            out.append(0x80 | UInt8(entries.count))
            for (key, value) in entries {
                Pack.str(key).append(to: &out)
                value.append(to: &out)
            }
        case .raw(let b):
            out += b
        }
    }
}
