import BottleFitProtocol

/// One message as a peer could send it: decoded, and when it decodes, encoded and decoded again (a
/// message the decoder accepts must be one the encoder writes and the decoder reads back).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzProtocol(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: start, count: count)
    if let message = try? Message.decode(bytes) {
        let again = try! message.encoded()
        _ = try! Message.decode(again)
    }
    return 0
}
