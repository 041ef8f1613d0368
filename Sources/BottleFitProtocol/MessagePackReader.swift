import CBottleFitMsgPack

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Decodes one msgpack message with msgpack-c (`msgpack_unpack` into a zone) after the
/// structural pre-scan, and hands out typed, bounds-checked views of its fields.
///
/// Strings and bins in the tree point into the input bytes (msgpack-c references rather
/// than copies them), so the views are valid only inside `withRoot`'s closure.
enum MessagePackReader {
    static func withRoot<R>(
        _ bytes: UnsafeRawBufferPointer, limits: ProtocolLimits,
        _ body: (FieldMap) throws(ProtocolError) -> R
    ) throws(ProtocolError) -> R {
        guard bytes.count <= limits.maxMessageBytes else {
            throw .tooLarge(field: "message", limit: limits.maxMessageBytes)
        }
        guard let base = bytes.baseAddress, bytes.count > 0 else { throw .truncated }
        try MessagePackScan.check(bytes, limits: limits)

        // The corresponding C functions are `msgpack_zone_new`, `msgpack_unpack` and `msgpack_zone_free`.
        guard let zone = msgpack_zone_new(Int(MSGPACK_ZONE_CHUNK_SIZE)) else {
            throw .codecFailure("msgpack_zone_new returned NULL")
        }
        defer { msgpack_zone_free(zone) }
        var root = msgpack_object()
        var offset = 0
        let rc = msgpack_unpack(base.assumingMemoryBound(to: CChar.self), bytes.count, &offset, zone, &root)
        switch rc {
        case MSGPACK_UNPACK_SUCCESS: break
        case MSGPACK_UNPACK_EXTRA_BYTES: throw .trailingBytes(bytes.count - offset)
        case MSGPACK_UNPACK_CONTINUE: throw .truncated
        case MSGPACK_UNPACK_PARSE_ERROR: throw .malformed("msgpack_unpack: parse error")
        case MSGPACK_UNPACK_NOMEM_ERROR: throw .codecFailure("msgpack_unpack: out of memory")
        default: throw .codecFailure("msgpack_unpack returned \(rc.rawValue)")
        }
        return try body(FieldMap(root, path: ""))
    }
}

/// Checked conversions of one `msgpack_object`; `field` names it in errors.
enum FieldValue {
    static func isNil(_ o: msgpack_object) -> Bool { o.type == MSGPACK_OBJECT_NIL }

    /// An unsigned integer no larger than `max`.
    static func unsigned(_ o: msgpack_object, _ field: String, max: UInt64 = .max) throws(ProtocolError) -> UInt64 {
        switch o.type {
        case MSGPACK_OBJECT_POSITIVE_INTEGER:
            guard o.via.u64 <= max else { throw .invalidValue(field: field, reason: "\(o.via.u64) exceeds \(max)") }
            return o.via.u64
        case MSGPACK_OBJECT_NEGATIVE_INTEGER:
            throw .invalidValue(field: field, reason: "negative (\(o.via.i64))")
        default:
            throw .wrongType(field: field, expected: "unsigned integer")
        }
    }

    /// An unsigned integer in `range`, as `Int`.
    static func int(_ o: msgpack_object, _ field: String, in range: ClosedRange<Int>) throws(ProtocolError) -> Int {
        let v = try unsigned(o, field, max: UInt64(Swift.max(range.upperBound, 0)))
        guard v >= range.lowerBound else { throw .invalidValue(field: field, reason: "\(v) is below \(range.lowerBound)") }
        return Int(v)
    }

    /// A finite number: float32 or float64, or an integer (some encoders write 1.0 as 1).
    static func double(_ o: msgpack_object, _ field: String) throws(ProtocolError) -> Double {
        let v: Double
        switch o.type {
        case MSGPACK_OBJECT_FLOAT32, MSGPACK_OBJECT_FLOAT64: v = o.via.f64
        case MSGPACK_OBJECT_POSITIVE_INTEGER: v = Double(o.via.u64)
        case MSGPACK_OBJECT_NEGATIVE_INTEGER: v = Double(o.via.i64)
        default: throw .wrongType(field: field, expected: "float")
        }
        guard v.isFinite else { throw .invalidValue(field: field, reason: "not finite") }
        return v
    }

    /// A finite number that fits a Float.
    static func float(_ o: msgpack_object, _ field: String) throws(ProtocolError) -> Float {
        let v = try double(o, field)
        let f = Float(v)
        guard f.isFinite else { throw .invalidValue(field: field, reason: "out of float32 range") }
        return f
    }

    /// A UTF-8 string of at most `maxBytes` bytes, checked before it is copied.
    static func string(_ o: msgpack_object, _ field: String, maxBytes: Int) throws(ProtocolError) -> String {
        guard o.type == MSGPACK_OBJECT_STR else { throw .wrongType(field: field, expected: "string") }
        let count = Int(o.via.str.size)
        guard count <= maxBytes else { throw .tooLarge(field: field, limit: maxBytes) }
        guard count > 0, let p = o.via.str.ptr else { return "" }
        let utf8 = UnsafeRawBufferPointer(start: p, count: count).bindMemory(to: UInt8.self)
        guard let s = String(validating: utf8, as: UTF8.self) else {
            throw .invalidValue(field: field, reason: "not valid UTF-8")
        }
        return s
    }

    /// A non-empty identifier (camera, worker, model, error code).
    static func identifier(_ o: msgpack_object, _ field: String, limits: ProtocolLimits) throws(ProtocolError) -> String {
        let s = try string(o, field, maxBytes: limits.maxIdentifierBytes)
        guard !s.isEmpty else { throw .invalidValue(field: field, reason: "empty") }
        return s
    }

    /// The bytes of a `bin` of at most `maxBytes`, not yet copied.
    static func binary(_ o: msgpack_object, _ field: String, maxBytes: Int) throws(ProtocolError) -> UnsafeRawBufferPointer {
        guard o.type == MSGPACK_OBJECT_BIN else { throw .wrongType(field: field, expected: "bin") }
        let count = Int(o.via.bin.size)
        guard count <= maxBytes else { throw .tooLarge(field: field, limit: maxBytes) }
        return UnsafeRawBufferPointer(start: count == 0 ? nil : o.via.bin.ptr, count: count)
    }

    /// The elements of an array of at most `maxCount`, checked before the caller builds anything.
    static func array(_ o: msgpack_object, _ field: String, maxCount: Int) throws(ProtocolError) -> UnsafeBufferPointer<msgpack_object> {
        guard o.type == MSGPACK_OBJECT_ARRAY else { throw .wrongType(field: field, expected: "array") }
        let count = Int(o.via.array.size)
        guard count <= maxCount else { throw .tooLarge(field: field, limit: maxCount) }
        return UnsafeBufferPointer(start: count == 0 ? nil : o.via.array.ptr, count: count)
    }

    /// Decodes every element of an array with `element`.
    static func list<T>(
        _ o: msgpack_object, _ field: String, maxCount: Int,
        _ element: (msgpack_object, String) throws(ProtocolError) -> T
    ) throws(ProtocolError) -> [T] {
        let items = try array(o, field, maxCount: maxCount)
        var out: [T] = []
        out.reserveCapacity(items.count)
        for (i, item) in items.enumerated() { out.append(try element(item, "\(field)[\(i)]")) }
        return out
    }
}

/// The entries of a msgpack map with string keys, looked up by name.
/// Keys must be strings and unique; keys this version does not know are ignored.
struct FieldMap {
    private let entries: UnsafeBufferPointer<msgpack_object_kv>
    /// Prefix for field names in errors, such as "wk[2]." inside STATS.
    let path: String

    init(_ o: msgpack_object, path: String) throws(ProtocolError) {
        guard o.type == MSGPACK_OBJECT_MAP else {
            if path.isEmpty { throw .notAMap }
            throw .wrongType(field: String(path.dropLast()), expected: "map")
        }
        let count = Int(o.via.map.size)
        entries = UnsafeBufferPointer(start: count == 0 ? nil : o.via.map.ptr, count: count)
        self.path = path
        for (i, entry) in entries.enumerated() {
            guard entry.key.type == MSGPACK_OBJECT_STR else { throw .badKey("\(path)key \(i) is not a string") }
            for earlier in entries[..<i] where Self.sameKey(earlier.key, entry.key) {
                let name = (try? FieldValue.string(entry.key, "key", maxBytes: 64)) ?? "(long key)"
                throw .badKey("\(path)\(name) appears twice")
            }
        }
    }

    private static func sameKey(_ a: msgpack_object, _ b: msgpack_object) -> Bool {
        guard a.via.str.size == b.via.str.size else { return false }
        guard a.via.str.size > 0, let pa = a.via.str.ptr, let pb = b.via.str.ptr else { return a.via.str.size == 0 }
        return memcmp(pa, pb, Int(a.via.str.size)) == 0
    }

    private static func keyMatches(_ key: msgpack_object, _ name: UnsafeBufferPointer<UInt8>) -> Bool {
        guard Int(key.via.str.size) == name.count else { return false }
        guard name.count > 0, let pk = key.via.str.ptr, let pn = name.baseAddress else { return name.count == 0 }
        return memcmp(pk, pn, name.count) == 0
    }

    /// The full name of a field for error messages.
    func name(_ key: StaticString) -> String { path + key.description }

    /// The value under `key`; nil when absent or msgpack nil (optional fields may be sent either way).
    func optional(_ key: StaticString) -> msgpack_object? {
        key.withUTF8Buffer { k -> msgpack_object? in
            guard let entry = entries.first(where: { Self.keyMatches($0.key, k) }) else { return nil }
            return FieldValue.isNil(entry.val) ? nil : entry.val
        }
    }

    /// The value under `key`, which must be present and not nil.
    func required(_ key: StaticString) throws(ProtocolError) -> msgpack_object {
        guard let v = optional(key) else { throw .missingField(name(key)) }
        return v
    }
}
