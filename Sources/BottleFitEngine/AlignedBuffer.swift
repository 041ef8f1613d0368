import BottleFitCore
import Glibc

/// A 64-byte-aligned block of memory owned by a plan or session; freed with its owner.
final class AlignedBuffer {
    let pointer: UnsafeMutableRawPointer
    let byteCount: Int

    /// Buffers from 4 MiB up (large weights and packed weights, early activations) are
    /// 2 MiB-aligned and asked to be backed by transparent huge pages (`madvise`): the
    /// kernels stream them, and with 4 KiB pages every page crossed costs a TLB miss and
    /// stops the hardware prefetcher. Smaller ones are not: rounding them up to 2 MiB cost
    /// 85 MB of a tail worker's 665 MB for no measurable speed. Where THP is off, the
    /// advice is ignored.
    init(byteCount: Int) {
        let huge = 2 << 20
        if byteCount >= 4 << 20 {
            self.byteCount = (byteCount + huge - 1) / huge * huge
            pointer = UnsafeMutableRawPointer.allocate(byteCount: self.byteCount, alignment: huge)
            _ = madvise(pointer, self.byteCount, MADV_HUGEPAGE)
        } else {
            self.byteCount = Swift.max(byteCount, 64)
            pointer = UnsafeMutableRawPointer.allocate(byteCount: self.byteCount, alignment: 64)
        }
        pointer.initializeMemory(as: UInt8.self, repeating: 0, count: self.byteCount)
    }

    /// A buffer holding a copy of the tensor's elements.
    convenience init(copying tensor: Tensor) {
        self.init(byteCount: tensor.count * tensor.elementType.byteSize)
        copy(tensor, into: pointer)
    }

    deinit { pointer.deallocate() }
}

/// Copies a tensor's elements to raw memory.
func copy(_ tensor: Tensor, into pointer: UnsafeMutableRawPointer) {
    switch tensor.storage {
    case .float32(let v): v.withUnsafeBytes { if let b = $0.baseAddress { pointer.copyMemory(from: b, byteCount: $0.count) } }
    case .uint8(let v): v.withUnsafeBytes { if let b = $0.baseAddress { pointer.copyMemory(from: b, byteCount: $0.count) } }
    case .int64(let v): v.withUnsafeBytes { if let b = $0.baseAddress { pointer.copyMemory(from: b, byteCount: $0.count) } }
    }
}

/// Reads a tensor of the given type out of raw memory.
func readTensor(_ type: ValueType, from pointer: UnsafeRawPointer) -> Tensor {
    let n = type.count
    switch type.elementType {
    case .float32:
        return Tensor(shape: type.shape, floats: Array(UnsafeBufferPointer(start: pointer.assumingMemoryBound(to: Float.self), count: n)))
    case .uint8:
        return Tensor(shape: type.shape, bytes: Array(UnsafeBufferPointer(start: pointer.assumingMemoryBound(to: UInt8.self), count: n)))
    case .int64:
        return Tensor(shape: type.shape, int64s: Array(UnsafeBufferPointer(start: pointer.assumingMemoryBound(to: Int64.self), count: n)))
    }
}
