import CBottleFitOpenBLAS
import Dispatch

/// glibc's `mallopt` (malloc.h, which the Glibc module does not export).
@_silgen_name("mallopt")
private func glibcMallopt(_ parameter: Int32, _ value: Int32) -> Int32

/// Row-major C = alpha·op(A)·op(B) + beta·C through OpenBLAS `cblas_sgemm`.
/// `lda`, `ldb`, `ldc` are the row strides of A, B and C as stored.
@inline(__always)
func sgemm(
    transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int, alpha: Float = 1,
    _ a: UnsafePointer<Float>, lda: Int, _ b: UnsafePointer<Float>, ldb: Int, beta: Float = 0,
    _ c: UnsafeMutablePointer<Float>, ldc: Int
) {
    guard m > 0, n > 0 else { return }
    if k == 0 {
        for i in 0..<m { for j in 0..<n { c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j] } }
        return
    }
    cblas_sgemm(
        CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
        Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}

/// How many threads the training engine uses: OpenBLAS's own pool for the GEMMs, and
/// the same number of Dispatch workers for im2col, pooling and element-wise loops.
public enum TrainingThreads {
    nonisolated(unsafe) private static var count = 1

    /// Sets the thread count for GEMMs (OpenBLAS) and the engine's own loops.
    public static func configure(_ threads: Int) {
        count = max(1, threads)
        openblas_set_num_threads(Int32(count))
        // Every step allocates and frees the same large buffers (im2col matrices, saved
        // activations). Above glibc's default 128 KiB threshold each would be a fresh mmap,
        // page-faulted in and zeroed by the kernel on every step; keep them in the heap for reuse.
        _ = glibcMallopt(-3 /* M_MMAP_THRESHOLD */, 512 << 20)
        _ = glibcMallopt(-1 /* M_TRIM_THRESHOLD */, 1 << 30)
    }

    public static var current: Int { count }

    /// Runs `body(range)` over `parts` contiguous chunks of 0..<total in parallel (inline
    /// when one thread is configured or the work is small).
    static func forEach(_ total: Int, minimumPerPart: Int = 1, _ body: (Range<Int>) -> Void) {
        let parts = min(count, total / max(1, minimumPerPart))
        guard parts > 1 else {
            if total > 0 { body(0..<total) }
            return
        }
        withoutActuallyEscaping(body) { escapable in
            // Safe: concurrentPerform returns only after every iteration has finished, and the
            // callers give each part disjoint memory to write.
            let shared = UncheckedSendable(escapable)
            DispatchQueue.concurrentPerform(iterations: parts) { i in
                shared.value(total * i / parts..<total * (i + 1) / parts)
            }
        }
    }
}

/// Carries a value into a `@Sendable` closure where the caller guarantees exclusive use.
struct UncheckedSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
