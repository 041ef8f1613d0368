import BottleFitImaging

/// One JPEG as a camera or a frame folder could send it, decoded as workers do (RGB, bounded pixels)
/// and as a grayscale source would.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJPEG(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = [UInt8](UnsafeRawBufferPointer(start: start, count: count))
    _ = try? JPEGCodec.decode(bytes, channels: 3, maxPixels: 1 << 22)
    _ = try? JPEGCodec.decode(bytes, channels: 1, maxPixels: 1 << 22, toleratingCorruptData: true)
    return 0
}
