import BottleFitEngine
import Foundation

/// One model file's bytes through the importer `bottlefit` uses for every .onnx it reads.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzONNX(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    _ = try? ONNXImporter.decode(Data(bytes: start, count: count))
    return 0
}
