import CBottleFitOpenBLAS

/// How an engine session computes: its threads, the GEMM for constant weights and the
/// instruction set of the C kernels.
///
/// A process (or a test) makes one and gives it to each `InferenceSession`, as swift-nio's
/// `EventLoopGroup` is given to a bootstrap: sessions that share a context share its threads,
/// and two contexts never see each other's settings. The threads stop when the last session
/// and plan holding the context are gone. Nothing here is process-wide except OpenBLAS's own
/// thread count (`useSingleThreadedOpenBLAS`).
public final class ComputeContext: Sendable, CustomStringConvertible {
    /// Which GEMM the inference kernels use for constant weights.
    ///
    /// `packed`: the weights are packed once per session (by the first plan that needs them)
    /// for the C microkernel (`CBottleFitKernels`); only the activations are packed per call
    /// (but for a fully connected layer with a single row, which is OpenBLAS's `sgemv`).
    /// `openblas`: every call goes to `cblas_sgemm`, which packs both operands each time.
    /// `mixed`: at batch 1, every convolution packed (and batch normalizations fused as in
    /// `packed`; fully connected layers stay on OpenBLAS, whose `sgemv` is faster for one row):
    /// since the AVX2 strips stopped spilling, that took the time per image to 0.81x (ShuffleNetV2)
    /// to 0.94x (EfficientNet-B0) of the mixed plan before on every model measured but DenseNet-169
    /// (even; Zen 3, 2 threads), while at batch 8 packed ran 1.07x (ResNet-50) and 1.16x (the
    /// BottleFit full model) OpenBLAS's time. In larger batches, OpenBLAS, except for the pointwise
    /// convolutions that read a squeeze-and-excitation block's output, which run packed so that the
    /// planner can fuse the block's channel scale into them (applied as B is packed): on AVX2 the
    /// microkernel is slower than OpenBLAS's on large GEMMs but about even on those small ones, and
    /// the pass it saves is worth more (docs/performance.md, "AVX2-only CPUs"). The convolutions
    /// that take the direct row path (small weights, strided or with few output channels: the
    /// stems, the BottleFit head's bottleneck, DenseNet's 3x3 → 32) run packed too, and so do
    /// pointwise convolutions with at most 24 input channels on maps of 256 pixels or more
    /// (`isShallowPointwise`: OpenBLAS's per-call packing dominates there). Batch normalizations
    /// are not fused into convolutions in larger batches (DenseNet was 1.2x slower with them).
    /// Training always uses OpenBLAS.
    public enum GEMM: String, Sendable, CaseIterable {
        case packed, openblas, mixed

        /// Whether the planner may fuse a squeeze-and-excitation scale into a pointwise
        /// convolution (which then runs packed).
        var fusesChannelScales: Bool { self != .openblas }

        /// Whether every convolution with constant ungrouped weights runs packed in a plan of
        /// this batch size (`mixed` at batch 1: see above).
        func packsAllConvolutions(batch: Int) -> Bool { self == .packed || self == .mixed && batch == 1 }

        /// Whether the planner may fuse a batch normalization into a pointwise convolution.
        func fusesNormalizations(batch: Int) -> Bool { packsAllConvolutions(batch: batch) }
    }

    /// Threads a plan's kernels split their work over (the caller included).
    public let threads: Int
    public let gemm: GEMM
    /// The instruction set the C kernels run on (one this CPU runs).
    public let instructionSet: KernelInstructionSet
    let parallel: Parallel

    /// - Parameters:
    ///   - threads: at least 1; with more, `threads - 1` worker threads start now.
    ///   - gemm: default `packed` where the CPU has AVX-512, else `mixed` (the AVX2 and
    ///     portable microkernels are correct everywhere but slower than OpenBLAS on large GEMMs).
    ///   - instructionSet: default and upper bound the best this CPU runs; one it cannot run
    ///     (AVX-512 on an older CPU or on aarch64) means `portable`.
    public init(threads: Int = 1, gemm: GEMM? = nil, instructionSet: KernelInstructionSet? = nil) {
        let isa = instructionSet.map { $0.isSupported ? $0 : .portable } ?? .best
        self.threads = Swift.max(1, threads)
        self.instructionSet = isa
        self.gemm = gemm ?? (isa == .avx512 ? .packed : .mixed)
        if self.threads > 1 { Self.useSingleThreadedOpenBLAS() }
        parallel = Parallel(pool: self.threads > 1 ? WorkerPool(participants: self.threads) : nil)
    }

    public var description: String { "threads \(threads), gemm \(gemm.rawValue), kernels \(instructionSet)" }

    deinit {
        parallel.pool?.shutdown()
    }

    /// One thread, the best GEMM and instruction set for this CPU: what a session uses when
    /// it is given no context.
    public static let singleThreaded = ComputeContext()

    /// Makes OpenBLAS run each call on the calling thread, for the rest of the process.
    ///
    /// OpenBLAS's thread count is process-wide inside the library (`openblas_set_num_threads`),
    /// so it cannot belong to a context. The inference engine keeps OpenBLAS single-threaded
    /// and splits the work around it (docs/performance.md, "Threads": OpenBLAS's own pool and
    /// the engine's loops left both short of the cores); a context with more than one thread
    /// calls this when it is made, and `bottlefit` calls it at start for every inference role.
    /// Training, which sets OpenBLAS's count for its large GEMMs (`TrainingThreads`), runs in a
    /// process of its own. (OpenBLAS's own workers, started when the library loads, busy-wait
    /// for a fraction of a second and then sleep; stopping them with `blas_thread_shutdown_`
    /// made later single-threaded calls slower, so they are left be.)
    public static func useSingleThreadedOpenBLAS() {
        openBLASSingleThreaded
    }

    private static let openBLASSingleThreaded: Void = {
        openblas_set_num_threads(1)
    }()
}
