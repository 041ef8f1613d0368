import BottleFitCore
import Foundation

/// One .npy file's bytes through the reader `bottlefit infer` uses.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzNPY(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    _ = try? NPY.decode(Data(bytes: start, count: count))
    return 0
}
