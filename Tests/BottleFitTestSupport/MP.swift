/// A msgpack encoder written from the msgpack specification, independent of msgpack-c, used to
/// build messages by hand: exactly the documented layout, or deliberately broken variants of it.
/// Shared by the protocol, broker and pipeline tests.
public indirect enum MP: Sendable {
    case uint(UInt64)
    case int(Int64)
    case str(String)
    case rawStr([UInt8])
    case bin([UInt8])
    case f32(Float)
    case f64(Double)
    case bool(Bool)
    case null
    case array([MP])
    case map([(String, MP)])
    case anyMap([(MP, MP)])
    /// Bytes emitted as they are (headers that lie, reserved bytes, ...).
    case raw([UInt8])

    public var bytes: [UInt8] {
        var out: [UInt8] = []
        append(to: &out)
        return out
    }

    private static func be(_ value: UInt64, _ width: Int) -> [UInt8] {
        (0..<width).reversed().map { UInt8(truncatingIfNeeded: value >> (8 * UInt64($0))) }
    }

    public func append(to out: inout [UInt8]) {
        switch self {
        case .uint(let v):
            switch v {
            case 0...0x7f: out.append(UInt8(v))
            case 0...0xff: out += [0xcc] + Self.be(v, 1)
            case 0...0xffff: out += [0xcd] + Self.be(v, 2)
            case 0...0xffff_ffff: out += [0xce] + Self.be(v, 4)
            default: out += [0xcf] + Self.be(v, 8)
            }
        case .int(let v):
            if v >= 0 { MP.uint(UInt64(v)).append(to: &out) }
            else if v >= -32 { out.append(UInt8(bitPattern: Int8(v))) }
            else { out += [0xd3] + Self.be(UInt64(bitPattern: v), 8) }
        case .str(let s): MP.rawStr(Array(s.utf8)).append(to: &out)
        case .rawStr(let b):
            let n = UInt64(b.count)
            if n < 32 { out.append(0xa0 | UInt8(n)) }
            else if n < 0x100 { out += [0xd9] + Self.be(n, 1) }
            else if n < 0x10000 { out += [0xda] + Self.be(n, 2) }
            else { out += [0xdb] + Self.be(n, 4) }
            out += b
        case .bin(let b):
            let n = UInt64(b.count)
            if n < 0x100 { out += [0xc4] + Self.be(n, 1) }
            else if n < 0x10000 { out += [0xc5] + Self.be(n, 2) }
            else { out += [0xc6] + Self.be(n, 4) }
            out += b
        case .f32(let f): out += [0xca] + Self.be(UInt64(f.bitPattern), 4)
        case .f64(let d): out += [0xcb] + Self.be(d.bitPattern, 8)
        case .bool(let b): out.append(b ? 0xc3 : 0xc2)
        case .null: out.append(0xc0)
        case .array(let items):
            Self.header(items.count, fix: 0x90, w16: 0xdc, w32: 0xdd, into: &out)
            for item in items { item.append(to: &out) }
        case .map(let entries):
            MP.anyMap(entries.map { (.str($0.0), $0.1) }).append(to: &out)
        case .anyMap(let entries):
            Self.header(entries.count, fix: 0x80, w16: 0xde, w32: 0xdf, into: &out)
            for (k, v) in entries { k.append(to: &out); v.append(to: &out) }
        case .raw(let b): out += b
        }
    }

    private static func header(_ count: Int, fix: UInt8, w16: UInt8, w32: UInt8, into out: inout [UInt8]) {
        if count < 16 { out.append(fix | UInt8(count)) }
        else if count < 0x10000 { out += [w16] + be(UInt64(count), 2) }
        else { out += [w32] + be(UInt64(count), 4) }
    }
}

/// A message as an ordered list of fields, easy to break one field at a time.
public struct HandMessage: Sendable {
    public var fields: [(String, MP)]

    public init(fields: [(String, MP)]) {
        self.fields = fields
    }

    public var bytes: [UInt8] { MP.map(fields).bytes }

    public func replacing(_ key: String, with value: MP) -> HandMessage {
        HandMessage(fields: fields.map { $0.0 == key ? ($0.0, value) : $0 })
    }

    public func removing(_ key: String) -> HandMessage {
        HandMessage(fields: fields.filter { $0.0 != key })
    }

    public func adding(_ key: String, _ value: MP) -> HandMessage {
        HandMessage(fields: fields + [(key, value)])
    }
}
