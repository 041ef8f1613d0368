import CBottleFitMsgPack

/// Encodes msgpack values into a growing buffer with msgpack-c (`msgpack_sbuffer` + `msgpack_packer`).
///
/// Every `msgpack_pack_*` call reports failure (a failed `realloc` in the buffer's write
/// callback); each is checked and becomes `ProtocolError.codecFailure`.
final class MessagePackWriter {
    // Heap-allocated so the packer's pointer to the buffer stays valid for the writer's life.
    private let buffer: UnsafeMutablePointer<msgpack_sbuffer>
    private let packer: UnsafeMutablePointer<msgpack_packer>

    /// The corresponding C functions are `msgpack_sbuffer_init` and `msgpack_packer_init`.
    init() {
        buffer = .allocate(capacity: 1)
        msgpack_sbuffer_init(buffer)
        packer = .allocate(capacity: 1)
        msgpack_packer_init(packer, buffer, msgpack_sbuffer_write)
    }

    /// The corresponding C function is `msgpack_sbuffer_destroy`.
    deinit {
        msgpack_sbuffer_destroy(buffer)
        buffer.deallocate()
        packer.deallocate()
    }

    /// A copy of everything written so far.
    var bytes: [UInt8] {
        guard let data = buffer.pointee.data, buffer.pointee.size > 0 else { return [] }
        return Array(UnsafeRawBufferPointer(start: data, count: buffer.pointee.size))
    }

    private func check(_ rc: Int32, _ what: StaticString) throws(ProtocolError) {
        if rc != 0 { throw .codecFailure("\(what) failed (out of memory?)") }
    }

    /// A map header of `count` key/value pairs. The corresponding C function is `msgpack_pack_map`.
    func map(_ count: Int) throws(ProtocolError) { try check(msgpack_pack_map(packer, count), "msgpack_pack_map") }

    /// An array header. The corresponding C function is `msgpack_pack_array`.
    func array(_ count: Int) throws(ProtocolError) { try check(msgpack_pack_array(packer, count), "msgpack_pack_array") }

    /// A UTF-8 string. The corresponding C functions are `msgpack_pack_str` and `msgpack_pack_str_body`.
    func string(_ value: String) throws(ProtocolError) {
        var value = value
        let rc = value.withUTF8 { utf8 in
            let header = msgpack_pack_str(packer, utf8.count)
            return header != 0 ? header : msgpack_pack_str_body(packer, utf8.baseAddress, utf8.count)
        }
        try check(rc, "msgpack_pack_str")
    }

    /// Opaque bytes, as one `bin` value. The corresponding C functions are `msgpack_pack_bin`
    /// and `msgpack_pack_bin_body`.
    func binary(_ value: [UInt8]) throws(ProtocolError) {
        let rc = value.withUnsafeBytes { raw in
            let header = msgpack_pack_bin(packer, raw.count)
            return header != 0 ? header : msgpack_pack_bin_body(packer, raw.baseAddress, raw.count)
        }
        try check(rc, "msgpack_pack_bin")
    }

    /// An unsigned integer in its shortest encoding. The corresponding C function is `msgpack_pack_uint64`.
    func unsigned(_ value: UInt64) throws(ProtocolError) {
        try check(msgpack_pack_uint64(packer, value), "msgpack_pack_uint64")
    }

    /// A non-negative `Int` as an unsigned integer.
    func unsigned(_ value: Int) throws(ProtocolError) {
        guard let v = UInt64(exactly: value) else { throw .invalidValue(field: "(integer)", reason: "negative") }
        try unsigned(v)
    }

    /// A float32. The corresponding C function is `msgpack_pack_float`.
    func float32(_ value: Float) throws(ProtocolError) { try check(msgpack_pack_float(packer, value), "msgpack_pack_float") }

    /// A float64. The corresponding C function is `msgpack_pack_double`.
    func float64(_ value: Double) throws(ProtocolError) { try check(msgpack_pack_double(packer, value), "msgpack_pack_double") }

    /// A key (a short ASCII string) followed by nothing: the caller writes the value next.
    func key(_ name: StaticString) throws(ProtocolError) {
        let rc = name.withUTF8Buffer { utf8 in
            let header = msgpack_pack_str(packer, utf8.count)
            return header != 0 ? header : msgpack_pack_str_body(packer, utf8.baseAddress, utf8.count)
        }
        try check(rc, "msgpack_pack_str")
    }

    /// The "v" and "t" fields every message starts with.
    func header(_ type: MessageType) throws(ProtocolError) {
        try key("v"); try unsigned(ProtocolVersion.current)
        try key("t"); try string(type.rawValue)
    }
}
