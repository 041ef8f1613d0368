import CBottleFitKernels

/// Single-precision GEMM with the left operand (a layer's weights) packed once: the Swift face
/// of `CBottleFitKernels` (see its header for the layouts).
///
/// C[M, N] = A[M, K] · B[K, N], row-major. A is packed at plan time into panels of 8 rows,
/// blocked along K; B (activations, im2col columns or Winograd-transformed tiles) is packed per
/// call into panels of 48, 32 or 16 columns, small enough to stay in L2 while every panel of A
/// streams past it, or read in place as rows of an input (a direct convolution). Each call
/// names the instruction set it runs on (`KernelInstructionSet`, from the session's compute
/// context).
enum PackedGEMM {
    /// Rows of A per panel (broadcast operand of the microkernel).
    static let panelRows = Int(BOTTLEFIT_PANEL_ROWS)
    /// Columns of B per full panel (three 16-float vectors).
    static let panelColumns = Int(BOTTLEFIT_PANEL_COLUMNS)
    /// Floats of C tile every thread that calls `multiply` needs.
    static let tileCount = Int(BOTTLEFIT_TILE_FLOATS)

    static func panels(rows m: Int) -> Int { (m + panelRows - 1) / panelRows }

    /// Floats of packed A for an M x K matrix.
    static func packedCount(rows m: Int, depth k: Int) -> Int { panels(rows: m) * panelRows * k }

    /// Columns B takes up packed: panels of 48, the last one rounded up to 16, 32 or 48.
    static func paddedColumns(_ n: Int) -> Int { n / panelColumns * panelColumns + (n % panelColumns + 15) / 16 * 16 }

    /// Floats of B packed for K x n: panel q (columns 48q..<48q+w) is [K][w], starting at 48q·K.
    static func packedBCount(depth k: Int, columns n: Int) -> Int { k * paddedColumns(n) }

    /// Whether `multiplyIndirectRows` takes these dimensions.
    static func takesThreeRows(rows m: Int, depth k: Int, columns n: Int) -> Bool { bottlefit_takes_three_rows(m, k, n) != 0 }

    /// Packs row-major A (M x K, row stride `lda`) into `out` (`packedCount` floats); with
    /// `transposed`, element (row, k) is read from `a[k * lda + row]`.
    static func packA(
        _ a: UnsafePointer<Float>, lda: Int, rows m: Int, depth k: Int, transposed: Bool = false, into out: UnsafeMutablePointer<Float>
    ) {
        bottlefit_pack_a(a, lda, m, k, transposed ? 1 : 0, out)
    }

    /// Packs rows `rows` of B (K x n, row stride `ldb`) into `packed` (`packedBCount(k, n)` floats).
    /// Threads may pack disjoint row ranges of the same B at once.
    static func packB(
        _ b: UnsafePointer<Float>, ldb: Int, depth k: Int, columns n: Int, rows: Range<Int>, into packed: UnsafeMutablePointer<Float>
    ) {
        bottlefit_pack_b(b, ldb, k, n, rows.lowerBound, rows.upperBound, packed)
    }

    /// What happens to a finished block of C: + bias[row], + residual[row, column], ReLU, then
    /// the activation (any fused one: ReLU6, SiLU, HardSwish, ...).
    struct Epilogue {
        var bias: UnsafePointer<Float>?
        var residual: UnsafePointer<Float>?
        var residualStride: Int
        var relu: Bool
        var activation: Activation

        init(
            bias: UnsafePointer<Float>? = nil, residual: UnsafePointer<Float>? = nil, residualStride: Int = 0, relu: Bool = false,
            activation: Activation = .none
        ) {
            self.bias = bias
            self.residual = residual
            self.residualStride = residualStride
            self.relu = relu
            self.activation = activation
        }

        static var none: Epilogue { Epilogue() }

        var c: bottlefit_epilogue {
            bottlefit_epilogue(
                bias: bias, residual: residual, residual_stride: residualStride, relu: relu ? 1 : 0, activation: activation.c)
        }
    }

    /// Rows `panels` (in panels of 8) of C = A·B for columns 0..<n, then the epilogue, on the
    /// calling thread. `packedB` holds B's n columns packed; `tile` holds `tileCount` floats.
    static func multiply(
        _ isa: KernelInstructionSet, packedA: UnsafePointer<Float>, rows m: Int, depth k: Int, panels: Range<Int>,
        packedB: UnsafePointer<Float>, columns n: Int, c: UnsafeMutablePointer<Float>, ldc: Int,
        epilogue: Epilogue, tile: UnsafeMutablePointer<Float>
    ) {
        bottlefit_packed_gemm(isa.c, packedA, m, k, panels.lowerBound, panels.upperBound, packedB, n, c, ldc, epilogue.c, tile)
    }

    /// The same with row k of B at `base + offsets[k]`, running on contiguously (readable up
    /// to n rounded up to 16): a direct convolution over one output row.
    static func multiplyIndirect(
        _ isa: KernelInstructionSet, packedA: UnsafePointer<Float>, rows m: Int, depth k: Int, panels: Range<Int>,
        base: UnsafePointer<Float>, offsets: UnsafePointer<Int>, columns n: Int, c: UnsafeMutablePointer<Float>, ldc: Int,
        epilogue: Epilogue, tile: UnsafeMutablePointer<Float>
    ) {
        bottlefit_packed_gemm_indirect(
            isa.c, packedA, m, k, panels.lowerBound, panels.upperBound, base, offsets, n, c, ldc, epilogue.c, tile)
    }

    /// `multiplyIndirect` for three output rows at once (`takesThreeRows`, no residual): row i
    /// reads B at `bases[i]` and writes C at `c[i]`.
    static func multiplyIndirectRows(
        _ isa: KernelInstructionSet, packedA: UnsafePointer<Float>, rows m: Int, depth k: Int,
        bases: UnsafePointer<UnsafePointer<Float>>, offsets: UnsafePointer<Int>, columns n: Int,
        c: UnsafePointer<UnsafeMutablePointer<Float>>, ldc: Int, epilogue: Epilogue, tile: UnsafeMutablePointer<Float>
    ) {
        // The C side takes arrays of nullable pointers; these are the same in memory.
        bases.withMemoryRebound(to: UnsafePointer<Float>?.self, capacity: 3) { b in
            c.withMemoryRebound(to: UnsafeMutablePointer<Float>?.self, capacity: 3) { cs in
                bottlefit_packed_gemm_indirect_rows(isa.c, packedA, m, k, b, offsets, n, cs, ldc, epilogue.c, tile)
            }
        }
    }
}
