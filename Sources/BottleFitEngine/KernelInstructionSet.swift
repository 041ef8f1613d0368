import CBottleFitKernels

/// The instruction set the engine's C kernels (packed GEMM, row max-pooling, depthwise and
/// grouped convolution rows, activations) run on.
///
/// Every kernel in `CBottleFitKernels` is compiled once for the architecture's baseline
/// (`portable`: x86-64 SSE2, aarch64 NEON) and, on x86-64 only, once more for AVX-512 and once
/// for AVX2 with a per-function `target` attribute; nothing in the package is compiled for a
/// particular CPU.
/// A `ComputeContext` holds the one its sessions use; the C entry points check the CPU
/// (CPUID and XGETBV, once) and run the portable build when asked for one the CPU lacks.
public enum KernelInstructionSet: String, Sendable, CaseIterable, CustomStringConvertible {
    case portable
    /// AVX-512 F, BW, DQ, VL with FMA (Skylake-SP, Ice Lake, Zen 4 and newer).
    case avx512
    /// AVX2 with FMA (Haswell, Zen and newer).
    case avx2

    /// Whether this CPU and operating system run it.
    public var isSupported: Bool { bottlefit_isa_supported(c) != 0 }

    /// The fastest one this CPU runs.
    public static var best: KernelInstructionSet {
        switch bottlefit_isa_best() {
        case BOTTLEFIT_ISA_AVX512: .avx512
        case BOTTLEFIT_ISA_AVX2: .avx2
        default: .portable
        }
    }

    public var description: String { rawValue }

    var c: bottlefit_isa {
        switch self {
        case .portable: BOTTLEFIT_ISA_PORTABLE
        case .avx512: BOTTLEFIT_ISA_AVX512
        case .avx2: BOTTLEFIT_ISA_AVX2
        }
    }
}
