/// A structural pre-scan of raw msgpack bytes, run before msgpack-c sees them.
///
/// msgpack-c's `msgpack_unpack` allocates an array's or map's storage (24 or 48 bytes per
/// entry) as soon as it reads the header, before the entries arrive: a 5-byte header claiming
/// 4 billion entries would ask for ~100 GB. This walk reads only headers and lengths, checks
/// every declared size against the bytes that remain and against `ProtocolLimits`, and
/// allocates nothing but a stack of at most `maxDepth + 1` counters. After it passes,
/// msgpack-c's allocations are bounded by `maxObjects` entries.
enum MessagePackScan {
    static func check(_ bytes: UnsafeRawBufferPointer, limits: ProtocolLimits) throws(ProtocolError) {
        let end = bytes.count
        var offset = 0
        // Values still expected at each open nesting level; index 0 is the single root value.
        var pending: [Int] = [1]
        pending.reserveCapacity(limits.maxDepth + 1)
        var objects = 0

        /// A big-endian length of `width` bytes following the type byte.
        func length(_ width: Int) throws(ProtocolError) -> Int {
            guard width <= end - offset else { throw .truncated }
            var value = 0
            for i in 0..<width { value = value << 8 | Int(bytes[offset + i]) }
            offset += width
            return value
        }

        /// Skips `count` bytes of body (string, bin, ext or number).
        func skip(_ count: Int) throws(ProtocolError) {
            guard count <= limits.maxMessageBytes else {
                throw .tooLarge(field: "declared length", limit: limits.maxMessageBytes)
            }
            guard count <= end - offset else { throw .truncated }
            offset += count
        }

        /// Opens a container holding `values` values (two per map entry).
        func open(values: Int, entries: Int, isMap: Bool) throws(ProtocolError) {
            if isMap {
                guard entries <= limits.maxMapEntries else { throw .tooLarge(field: "map entries", limit: limits.maxMapEntries) }
            } else {
                guard entries <= limits.maxArrayLength else { throw .tooLarge(field: "array length", limit: limits.maxArrayLength) }
            }
            // Every value takes at least one byte, so a count beyond the bytes left is a lie.
            guard values <= end - offset else { throw .truncated }
            guard pending.count <= limits.maxDepth else { throw .tooLarge(field: "nesting depth", limit: limits.maxDepth) }
            if values > 0 { pending.append(values) }
        }

        while let last = pending.indices.last {
            if pending[last] == 0 {
                pending.removeLast()
                continue
            }
            pending[last] -= 1
            objects += 1
            guard objects <= limits.maxObjects else { throw .tooLarge(field: "values in message", limit: limits.maxObjects) }
            guard offset < end else { throw .truncated }
            let type = bytes[offset]
            offset += 1
            switch type {
            case 0x00...0x7f, 0xe0...0xff, 0xc0, 0xc2, 0xc3: break  // fixints, nil, false, true
            case 0x80...0x8f: try open(values: 2 * Int(type & 0x0f), entries: Int(type & 0x0f), isMap: true)
            case 0x90...0x9f: try open(values: Int(type & 0x0f), entries: Int(type & 0x0f), isMap: false)
            case 0xa0...0xbf: try skip(Int(type & 0x1f))  // fixstr
            case 0xc1: throw .malformed("reserved byte 0xc1 at offset \(offset - 1)")
            case 0xc4, 0xd9: try skip(length(1))  // bin8, str8
            case 0xc5, 0xda: try skip(length(2))  // bin16, str16
            case 0xc6, 0xdb: try skip(length(4))  // bin32, str32
            case 0xc7: let n = try length(1); try skip(1 + n)  // ext8: length, type byte, data
            case 0xc8: let n = try length(2); try skip(1 + n)  // ext16
            case 0xc9: let n = try length(4); try skip(1 + n)  // ext32
            case 0xca: try skip(4)  // float32
            case 0xcb: try skip(8)  // float64
            case 0xcc, 0xd0: try skip(1)  // uint8, int8
            case 0xcd, 0xd1: try skip(2)
            case 0xce, 0xd2: try skip(4)
            case 0xcf, 0xd3: try skip(8)
            case 0xd4: try skip(2)  // fixext1..16: type byte + data
            case 0xd5: try skip(3)
            case 0xd6: try skip(5)
            case 0xd7: try skip(9)
            case 0xd8: try skip(17)
            case 0xdc: let n = try length(2); try open(values: n, entries: n, isMap: false)
            case 0xdd: let n = try length(4); try open(values: n, entries: n, isMap: false)
            case 0xde: let n = try length(2); try open(values: 2 * n, entries: n, isMap: true)
            case 0xdf: let n = try length(4); try open(values: 2 * n, entries: n, isMap: true)
            default: throw .malformed("unknown type byte \(type)")
            }
        }
        if offset != end { throw .trailingBytes(end - offset) }
    }
}
