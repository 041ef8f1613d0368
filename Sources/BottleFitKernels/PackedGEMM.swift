import CBottleFitCPUHints

/// Single-precision GEMM for AVX-512 with the left operand (a layer's weights) packed once.
///
/// This module is compiled for AVX-512 (`-target-cpu skylake-avx512`, see Package.swift), so
/// nothing in it may run on a CPU without AVX-512F/BW/DQ/VL: the engine checks the CPU first
/// (`KernelSelection` in BottleFitEngine) and calls in only when it holds. Nothing here runs
/// at load time (no global initialisers).
///
/// C[M, N] = A[M, K] · B[K, N], row-major. A is packed at plan time into panels of 8 rows,
/// blocked along K (`depthBlocks`): for each depth block, for each panel, [kc][8] floats,
/// so a pass over one depth block reads A sequentially. B (activations, im2col columns or
/// Winograd-transformed tiles) is packed per call into panels of 48, 32 or 16 columns,
/// [kc][width], small enough to stay in L2 while every panel of A streams past it. The
/// microkernel keeps an 8 x 48 block of C in 24 ZMM accumulators: per k, three loads of B,
/// eight broadcasts of A and 24 FMAs, and a prefetch of A 2 KiB ahead (weights come from
/// DRAM at batch 1; without it the kernel waited on them).
public enum PackedGEMM {
    /// Rows of A per panel (broadcast operand of the microkernel).
    public static let panelRows = 8
    /// Columns of B per full panel (three 16-float vectors).
    public static let panelColumns = 48
    /// Upper bound of a depth block: [256][8] of A is 8 KiB, in L1 beside a B row.
    public static let maximumDepth = 512
    /// Columns per B block: 256 x 480 floats is 480 KiB, in L2.
    public static let blockColumns = 240

    /// The depth blocks A is packed in and multiplied by: equal sizes of at most `maximumDepth`.
    public static func depthBlocks(_ k: Int) -> (count: Int, size: Int) {
        let count = Swift.max(1, (k + maximumDepth - 1) / maximumDepth)
        return (count, (k + count - 1) / count)
    }

    public static func panels(rows m: Int) -> Int { (m + panelRows - 1) / panelRows }

    /// Floats of packed A for an M x K matrix.
    public static func packedCount(rows m: Int, depth k: Int) -> Int { panels(rows: m) * panelRows * k }

    /// Columns B takes up packed: panels of 48, the last one rounded up to 16, 32 or 48.
    public static func paddedColumns(_ n: Int) -> Int { n / panelColumns * panelColumns + (n % panelColumns + 15) / 16 * 16 }

    /// Floats of B packed for K x n: panel q (columns 48q..<48q+w) is [K][w], starting at 48q·K.
    public static func packedBCount(depth k: Int, columns n: Int) -> Int { k * paddedColumns(n) }

    /// Floats of C tile every thread that calls `multiply` needs.
    public static let tileCount = panelRows * panelColumns

    /// Packs row-major A (M x K, row stride `lda`) into `out` (`packedCount` floats):
    /// for each depth block, for each panel of 8 rows, [kc][8]. Rows past M are zero.
    /// With `transposed`, element (row, k) is read from `a[k * lda + row]` (A stored as Aᵀ).
    public static func packA(
        _ a: UnsafePointer<Float>, lda: Int, rows m: Int, depth k: Int, transposed: Bool = false, into out: UnsafeMutablePointer<Float>
    ) {
        let (blocks, size) = depthBlocks(k)
        let p = panels(rows: m)
        var dst = out
        for blk in 0..<blocks {
            let k0 = blk * size, k1 = Swift.min(k, k0 + size)
            for panel in 0..<p {
                for kk in k0..<k1 {
                    for r in 0..<panelRows {
                        let row = panel * panelRows + r
                        dst[r] = row >= m ? 0 : transposed ? a[kk * lda + row] : a[row * lda + kk]
                    }
                    dst += panelRows
                }
            }
        }
    }

    /// What happens to a finished block of C: + bias[row], + residual[row, column], ReLU.
    public struct Epilogue {
        public var bias: UnsafePointer<Float>?
        public var residual: UnsafePointer<Float>?
        public var residualStride: Int
        public var relu: Bool

        public init(bias: UnsafePointer<Float>? = nil, residual: UnsafePointer<Float>? = nil, residualStride: Int = 0, relu: Bool = false) {
            self.bias = bias
            self.residual = residual
            self.residualStride = residualStride
            self.relu = relu
        }

        public static var none: Epilogue { Epilogue() }
    }

    /// Computes rows `panels` (in panels of 8) of C = A·B for columns 0..<n, then the epilogue,
    /// on the calling thread. `packedA` comes from `packA` for the full M x K; `packedB` holds
    /// B's n columns packed as `packB` does; `c` points at row 0, column 0 of C (row stride
    /// `ldc`); the epilogue's residual is indexed like C. `tile` holds `tileCount` floats.
    public static func multiply(
        packedA: UnsafePointer<Float>, rows m: Int, depth k: Int, panels: Range<Int>,
        packedB: UnsafePointer<Float>, columns n: Int, c: UnsafeMutablePointer<Float>, ldc: Int,
        epilogue: Epilogue, tile: UnsafeMutablePointer<Float>
    ) {
        var j0 = 0
        while j0 < n {
            // A block of columns whose B panels stay in L2 while all of A's panels pass.
            let width = Swift.min(blockColumns, n - j0)
            sweep(packedA: packedA, rows: m, depth: k, panels: panels, columns: j0..<j0 + width, c: c, ldc: ldc, epilogue: epilogue, tile: tile) {
                k0, q, w in PackedRows(base: UnsafeRawPointer(packedB + q * k + k0 * w), stride: w * 4)
            }
            j0 += width
        }
    }

    /// Every depth block, every panel of rows, every block of up to 48 of `columns`: the
    /// loops both drivers share. `rowsOf(k0, column, width)` says where the depth block
    /// starting at k0 of the B panel starting at `column` (`width` floats wide) lies.
    ///
    /// With `evenTail`, 64 columns left are done as 32 + 32 instead of 48 + 16: the 8 x 16
    /// kernel waits on its loads (nine per eight FMAs), the 8 x 32 one does not (the stem's
    /// 112-wide rows: 1.7% faster). Only where B is read in place: packed B is laid out in
    /// panels of 48.
    @inline(__always)
    static func sweep<B: BRows>(
        packedA: UnsafePointer<Float>, rows m: Int, depth k: Int, panels: Range<Int>, columns: Range<Int>,
        c: UnsafeMutablePointer<Float>, ldc: Int, epilogue: Epilogue, tile: UnsafeMutablePointer<Float>, evenTail: Bool = false,
        rowsOf: (_ k0: Int, _ column: Int, _ width: Int) -> B
    ) {
        let (blocks, size) = depthBlocks(k)
        let mPad = Self.panels(rows: m) * panelRows
        for blk in 0..<blocks {
            let k0 = blk * size, k1 = Swift.min(k, k0 + size), kc = k1 - k0
            let first = blk == 0, last = blk == blocks - 1
            let aBlock = packedA + k0 * mPad
            for panel in panels {
                let a = aBlock + panel * kc * panelRows
                let row0 = panel * panelRows
                let rows = Swift.min(panelRows, m - row0)
                var q = columns.lowerBound
                while q < columns.upperBound {
                    let left = columns.upperBound - q
                    let cols = evenTail && left == 64 ? 32 : Swift.min(panelColumns, left)
                    block(
                        kc, a, rowsOf(k0, q, (cols + 15) / 16 * 16), rows: rows, columns: cols, row0: row0, column0: q, c: c,
                        ldc: ldc, epilogue: epilogue, first: first, last: last, tile: tile)
                    q += cols
                }
            }
        }
    }

    /// One block of C (rows row0..<row0+rows, columns column0..<column0+cols, at most 8 x 48)
    /// over one depth block: the kernel for its width, then into C — straight from registers
    /// for a full block in a single depth block, else through the tile, adding to what
    /// earlier depth blocks left and applying the epilogue after the last.
    @inline(__always)
    static func block<B: BRows>(
        _ kc: Int, _ a: UnsafePointer<Float>, _ b: B, rows: Int, columns cols: Int, row0: Int, column0: Int,
        c: UnsafeMutablePointer<Float>, ldc: Int, epilogue: Epilogue, first: Bool, last: Bool, tile: UnsafeMutablePointer<Float>
    ) {
        var e = epilogue
        if last {
            e.bias = epilogue.bias.map { $0 + row0 }
            e.residual = epilogue.residual.map { $0 + row0 * epilogue.residualStride + column0 }
        }
        let out = c + row0 * ldc + column0
        if first && last && rows == panelRows && cols == panelColumns {
            kernel8x48(kc, a, b, TileSink(direct: out, ldc: ldc, epilogue: e, tile: tile))
            return
        }
        switch ((cols + 15) / 16, rows <= 4 && cols > 4) {
        case (3, false): kernel8x48(kc, a, b, TileSink(tile: tile))
        case (2, false): kernel8x32(kc, a, b, tile)
        // A last panel of at most 4 rows (M = 12: the BottleFit bottleneck) skips the
        // zero rows: half the FMAs.
        case (3, true): kernel4xW(3, kc, a, b, tile)
        case (2, true): kernel4xW(2, kc, a, b, tile)
        case (1, true): kernel4xW(1, kc, a, b, tile)
        default: narrowKernel(cols, kc, a, b, tile)
        }
        commit(tile, rows: rows, columns: cols, into: out, ldc: ldc, accumulate: !first, epilogue: last ? e : nil)
    }

    /// Packs rows `rows` of B (K x n, row stride `ldb`) into `packed` (`packedBCount(k, n)` floats).
    /// Threads may pack disjoint row ranges of the same B at once.
    public static func packB(
        _ b: UnsafePointer<Float>, ldb: Int, depth k: Int, columns n: Int, rows: Range<Int>, into packed: UnsafeMutablePointer<Float>
    ) {
        typealias V = SIMD16<Float>
        var q = 0
        while q < n {
            let cols = Swift.min(panelColumns, n - q)
            let w = (cols + 15) / 16 * 16
            let panel = packed + q * k
            if cols == w {
                for kk in rows {
                    let src = UnsafeRawPointer(b + kk * ldb + q)
                    let d = UnsafeMutableRawPointer(panel + kk * w)
                    var o = 0
                    while o < w * 4 {
                        d.storeBytes(of: src.loadUnaligned(fromByteOffset: o, as: V.self), toByteOffset: o, as: V.self)
                        o += 64
                    }
                }
            } else {
                for kk in rows {
                    let src = b + kk * ldb + q
                    let d = panel + kk * w
                    for j in 0..<cols { d[j] = src[j] }
                    for j in cols..<w { d[j] = 0 }
                }
            }
            q += cols
        }
    }

    /// Adds (or stores) an 8 x 48 tile into C's valid rows and columns, with the epilogue.
    @inline(__always)
    static func commit(
        _ tile: UnsafePointer<Float>, rows: Int, columns: Int, into c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool,
        epilogue e: Epilogue?
    ) {
        typealias V = SIMD16<Float>
        let vectors = columns / 16
        for r in 0..<rows {
            let t = UnsafeRawPointer(tile + r * panelColumns)
            let dst = c + r * ldc
            let d = UnsafeMutableRawPointer(dst)
            let bias = e?.bias.map { V(repeating: $0[r]) } ?? V()
            let residual = e?.residual.map { UnsafeRawPointer($0 + r * e!.residualStride) }
            let relu = e?.relu ?? false
            for v in 0..<vectors {
                let o = v * 64
                var x = t.loadUnaligned(fromByteOffset: o, as: V.self)
                if accumulate { x += d.loadUnaligned(fromByteOffset: o, as: V.self) }
                if e != nil {
                    x += bias
                    if let residual { x += residual.loadUnaligned(fromByteOffset: o, as: V.self) }
                    if relu { x = x.replacing(with: 0, where: x .< 0) }
                }
                d.storeBytes(of: x, toByteOffset: o, as: V.self)
            }
            let tp = tile + r * panelColumns
            let rp = residual?.assumingMemoryBound(to: Float.self)
            for j in vectors * 16..<columns {
                var x = tp[j]
                if accumulate { x += dst[j] }
                if e != nil {
                    x += bias[0]
                    if let rp { x += rp[j] }
                    if relu { x = Swift.max(x, 0) }
                }
                dst[j] = x
            }
        }
    }

    /// Computes rows `panels` of C[·, 0..<n] = A·B where row k of B starts at
    /// `base + offsets[k]` and runs on contiguously: a direct convolution over one output
    /// row, B's rows being input rows (zero-padded, split into column phases) that need no
    /// im2col or packing. B's rows must stay readable up to n rounded up to 16.
    public static func multiplyIndirect(
        packedA: UnsafePointer<Float>, rows m: Int, depth k: Int, panels: Range<Int>,
        base: UnsafePointer<Float>, offsets: UnsafePointer<Int>, columns n: Int, c: UnsafeMutablePointer<Float>, ldc: Int,
        epilogue: Epilogue, tile: UnsafeMutablePointer<Float>
    ) {
        sweep(
            packedA: packedA, rows: m, depth: k, panels: panels, columns: 0..<n, c: c, ldc: ldc, epilogue: epilogue, tile: tile,
            evenTail: true
        ) { k0, q, _ in IndirectRows(base: UnsafeRawPointer(base + q), offsets: offsets + k0)
        }
    }

    /// Whether `multiplyIndirectRows` takes these dimensions: rows in whole panels, one depth
    /// block, and rows of whole vectors that do not already fill 48-wide blocks.
    public static func takesThreeRows(rows m: Int, depth k: Int, columns n: Int) -> Bool {
        m % panelRows == 0 && depthBlocks(k).count == 1 && n % 16 == 0 && n % panelColumns != 0
    }

    /// `multiplyIndirect` for three output rows at once (`takesThreeRows`, no residual): row i
    /// reads B at `bases[i]` and writes C at `c[i]` (all with `ldc`). Their 3·n/16 vectors go
    /// through the 8 x 48 kernel three at a time, wherever a row ends: a 112-wide row alone
    /// leaves 64 columns to the slower 8 x 32 kernel (1.7% of the stem).
    public static func multiplyIndirectRows(
        packedA: UnsafePointer<Float>, rows m: Int, depth k: Int, bases: UnsafePointer<UnsafePointer<Float>>,
        offsets: UnsafePointer<Int>, columns n: Int, c: UnsafePointer<UnsafeMutablePointer<Float>>, ldc: Int,
        epilogue: Epilogue, tile: UnsafeMutablePointer<Float>
    ) {
        let perRow = n / 16
        @inline(__always) func place(_ v: Int) -> (row: Int, column: Int) { (v / perRow, v % perRow * 16) }
        for panel in 0..<panels(rows: m) {
            let a = packedA + panel * k * panelRows
            var e = epilogue
            e.bias = epilogue.bias.map { $0 + panel * panelRows }
            for block in 0..<perRow {
                let (r0, q0) = place(3 * block), (r1, q1) = place(3 * block + 1), (r2, q2) = place(3 * block + 2)
                let b = SplitRows(
                    bases: (UnsafeRawPointer(bases[r0] + q0), UnsafeRawPointer(bases[r1] + q1), UnsafeRawPointer(bases[r2] + q2)),
                    offsets: offsets)
                let out = c[r0] + q0
                var sink = TileSink(direct: out + panel * panelRows * ldc, ldc: ldc, epilogue: e, tile: tile)
                sink.offsets = (0, (c[r1] + q1 - out) * 4, (c[r2] + q2 - out) * 4)
                kernel8x48(k, a, b, sink)
            }
        }
    }

    // The microkernels: an 8 x W tile of A·B over kc steps into `tile` (row stride 48),
    // specialised for where B's rows are (packed panels or rows of an input).

    @inline(__always)
    static func kernel8x48<B: BRows>(_ kc: Int, _ a: UnsafePointer<Float>, _ b: B, _ sink: TileSink) {
        typealias V = SIMD16<Float>
        var c00 = V(), c01 = V(), c02 = V(), c10 = V(), c11 = V(), c12 = V()
        var c20 = V(), c21 = V(), c22 = V(), c30 = V(), c31 = V(), c32 = V()
        var c40 = V(), c41 = V(), c42 = V(), c50 = V(), c51 = V(), c52 = V()
        var c60 = V(), c61 = V(), c62 = V(), c70 = V(), c71 = V(), c72 = V()
        var pa = a
        for k in 0..<kc {
            bottlefit_prefetch(pa + 512)
            let (p0, p1, p2) = b.vectors(k)
            let b0 = p0.loadUnaligned(as: V.self)
            let b1 = p1.loadUnaligned(as: V.self)
            let b2 = p2.loadUnaligned(as: V.self)
            var s = V(repeating: pa[0])
            c00.addProduct(s, b0); c01.addProduct(s, b1); c02.addProduct(s, b2)
            s = V(repeating: pa[1])
            c10.addProduct(s, b0); c11.addProduct(s, b1); c12.addProduct(s, b2)
            s = V(repeating: pa[2])
            c20.addProduct(s, b0); c21.addProduct(s, b1); c22.addProduct(s, b2)
            s = V(repeating: pa[3])
            c30.addProduct(s, b0); c31.addProduct(s, b1); c32.addProduct(s, b2)
            s = V(repeating: pa[4])
            c40.addProduct(s, b0); c41.addProduct(s, b1); c42.addProduct(s, b2)
            s = V(repeating: pa[5])
            c50.addProduct(s, b0); c51.addProduct(s, b1); c52.addProduct(s, b2)
            s = V(repeating: pa[6])
            c60.addProduct(s, b0); c61.addProduct(s, b1); c62.addProduct(s, b2)
            s = V(repeating: pa[7])
            c70.addProduct(s, b0); c71.addProduct(s, b1); c72.addProduct(s, b2)
            pa += 8
        }
        func put(_ r: Int, _ x: V, _ y: V, _ z: V) {
            guard let c = sink.c else {
                let t = UnsafeMutableRawPointer(sink.tile)
                t.storeBytes(of: x, toByteOffset: r * 192, as: V.self)
                t.storeBytes(of: y, toByteOffset: r * 192 + 64, as: V.self)
                t.storeBytes(of: z, toByteOffset: r * 192 + 128, as: V.self)
                return
            }
            // Straight into C: + bias, + residual, ReLU.
            let bias = V(repeating: sink.bias?[r] ?? 0)
            var x = x + bias, y = y + bias, z = z + bias
            if let residual = sink.residual {
                let q = UnsafeRawPointer(residual + r * sink.residualStride)
                x += q.loadUnaligned(as: V.self)
                y += q.loadUnaligned(fromByteOffset: 64, as: V.self)
                z += q.loadUnaligned(fromByteOffset: 128, as: V.self)
            }
            if sink.relu {
                x = x.replacing(with: 0, where: x .< 0)
                y = y.replacing(with: 0, where: y .< 0)
                z = z.replacing(with: 0, where: z .< 0)
            }
            let d = UnsafeMutableRawPointer(c + r * sink.ldc)
            d.storeBytes(of: x, toByteOffset: sink.offsets.0, as: V.self)
            d.storeBytes(of: y, toByteOffset: sink.offsets.1, as: V.self)
            d.storeBytes(of: z, toByteOffset: sink.offsets.2, as: V.self)
        }
        put(0, c00, c01, c02); put(1, c10, c11, c12); put(2, c20, c21, c22); put(3, c30, c31, c32)
        put(4, c40, c41, c42); put(5, c50, c51, c52); put(6, c60, c61, c62); put(7, c70, c71, c72)
    }

    /// The first 4 rows of an 8-row panel times 16·`vectors` columns (1 to 3), into `tile`.
    @inline(__always)
    static func kernel4xW<B: BRows>(_ vectors: Int, _ kc: Int, _ a: UnsafePointer<Float>, _ b: B, _ tile: UnsafeMutablePointer<Float>) {
        typealias V = SIMD16<Float>
        var c00 = V(), c01 = V(), c02 = V(), c10 = V(), c11 = V(), c12 = V()
        var c20 = V(), c21 = V(), c22 = V(), c30 = V(), c31 = V(), c32 = V()
        var pa = a
        for k in 0..<kc {
            bottlefit_prefetch(pa + 512)
            let pb = b.row(k)
            let b0 = pb.loadUnaligned(as: V.self)
            let b1 = vectors > 1 ? pb.loadUnaligned(fromByteOffset: 64, as: V.self) : V()
            let b2 = vectors > 2 ? pb.loadUnaligned(fromByteOffset: 128, as: V.self) : V()
            // `vectors` is a constant at every call site: the unused lanes compile away.
            let s0 = V(repeating: pa[0]), s1 = V(repeating: pa[1]), s2 = V(repeating: pa[2]), s3 = V(repeating: pa[3])
            c00.addProduct(s0, b0); c10.addProduct(s1, b0); c20.addProduct(s2, b0); c30.addProduct(s3, b0)
            if vectors > 1 { c01.addProduct(s0, b1); c11.addProduct(s1, b1); c21.addProduct(s2, b1); c31.addProduct(s3, b1) }
            if vectors > 2 { c02.addProduct(s0, b2); c12.addProduct(s1, b2); c22.addProduct(s2, b2); c32.addProduct(s3, b2) }
            pa += 8
        }
        let t = UnsafeMutableRawPointer(tile)
        func put(_ r: Int, _ x: V, _ y: V, _ z: V) {
            t.storeBytes(of: x, toByteOffset: r * 192, as: V.self)
            t.storeBytes(of: y, toByteOffset: r * 192 + 64, as: V.self)
            t.storeBytes(of: z, toByteOffset: r * 192 + 128, as: V.self)
        }
        put(0, c00, c01, c02); put(1, c10, c11, c12); put(2, c20, c21, c22); put(3, c30, c31, c32)
    }

    @inline(__always)
    static func kernel8x32<B: BRows>(_ kc: Int, _ a: UnsafePointer<Float>, _ b: B, _ tile: UnsafeMutablePointer<Float>) {
        typealias V = SIMD16<Float>
        var c00 = V(), c01 = V(), c10 = V(), c11 = V(), c20 = V(), c21 = V(), c30 = V(), c31 = V()
        var c40 = V(), c41 = V(), c50 = V(), c51 = V(), c60 = V(), c61 = V(), c70 = V(), c71 = V()
        var pa = a
        for k in 0..<kc {
            bottlefit_prefetch(pa + 512)
            let pb = b.row(k)
            let b0 = pb.loadUnaligned(as: V.self)
            let b1 = pb.loadUnaligned(fromByteOffset: 64, as: V.self)
            var s = V(repeating: pa[0])
            c00.addProduct(s, b0); c01.addProduct(s, b1)
            s = V(repeating: pa[1])
            c10.addProduct(s, b0); c11.addProduct(s, b1)
            s = V(repeating: pa[2])
            c20.addProduct(s, b0); c21.addProduct(s, b1)
            s = V(repeating: pa[3])
            c30.addProduct(s, b0); c31.addProduct(s, b1)
            s = V(repeating: pa[4])
            c40.addProduct(s, b0); c41.addProduct(s, b1)
            s = V(repeating: pa[5])
            c50.addProduct(s, b0); c51.addProduct(s, b1)
            s = V(repeating: pa[6])
            c60.addProduct(s, b0); c61.addProduct(s, b1)
            s = V(repeating: pa[7])
            c70.addProduct(s, b0); c71.addProduct(s, b1)
            pa += 8
        }
        let t = UnsafeMutableRawPointer(tile)
        func put(_ r: Int, _ x: V, _ y: V) {
            t.storeBytes(of: x, toByteOffset: r * 192, as: V.self)
            t.storeBytes(of: y, toByteOffset: r * 192 + 64, as: V.self)
        }
        put(0, c00, c01); put(1, c10, c11); put(2, c20, c21); put(3, c30, c31)
        put(4, c40, c41); put(5, c50, c51); put(6, c60, c61); put(7, c70, c71)
    }

    @inline(__always)
    static func kernel8x16<B: BRows>(_ kc: Int, _ a: UnsafePointer<Float>, _ b: B, _ tile: UnsafeMutablePointer<Float>) {
        typealias V = SIMD16<Float>
        var c0 = V(), c1 = V(), c2 = V(), c3 = V(), c4 = V(), c5 = V(), c6 = V(), c7 = V()
        var pa = a
        for k in 0..<kc {
            bottlefit_prefetch(pa + 512)
            let pb = b.row(k)
            let b0 = pb.loadUnaligned(as: V.self)
            c0.addProduct(V(repeating: pa[0]), b0)
            c1.addProduct(V(repeating: pa[1]), b0)
            c2.addProduct(V(repeating: pa[2]), b0)
            c3.addProduct(V(repeating: pa[3]), b0)
            c4.addProduct(V(repeating: pa[4]), b0)
            c5.addProduct(V(repeating: pa[5]), b0)
            c6.addProduct(V(repeating: pa[6]), b0)
            c7.addProduct(V(repeating: pa[7]), b0)
            pa += 8
        }
        let t = UnsafeMutableRawPointer(tile)
        t.storeBytes(of: c0, toByteOffset: 0, as: V.self)
        t.storeBytes(of: c1, toByteOffset: 192, as: V.self)
        t.storeBytes(of: c2, toByteOffset: 384, as: V.self)
        t.storeBytes(of: c3, toByteOffset: 576, as: V.self)
        t.storeBytes(of: c4, toByteOffset: 768, as: V.self)
        t.storeBytes(of: c5, toByteOffset: 960, as: V.self)
        t.storeBytes(of: c6, toByteOffset: 1152, as: V.self)
        t.storeBytes(of: c7, toByteOffset: 1344, as: V.self)
    }
}

extension PackedGEMM {
    /// The last few columns (at most 4: N = 49 is 48 + 1, N = 196 is 4·48 + 4): the 8 rows
    /// of A at step k are one 8-float vector, times each of the 4 B values broadcast, with
    /// steps k and k + 1 in separate accumulators (8 independent FMA chains). Per step one
    /// load of A and 4 broadcasts instead of the 16-wide kernel's 9 loads for 16 lanes of
    /// which at most 4 count. Reads 4 floats of each B row (panels are 16 wide).
    @inline(__always)
    static func kernel8x4<B: BRows>(_ kc: Int, _ a: UnsafePointer<Float>, _ b: B, _ tile: UnsafeMutablePointer<Float>) {
        typealias V = SIMD8<Float>
        var c0 = V(), c1 = V(), c2 = V(), c3 = V(), d0 = V(), d1 = V(), d2 = V(), d3 = V()
        var pa = UnsafeRawPointer(a)
        var k = 0
        while k + 2 <= kc {
            let a0 = pa.loadUnaligned(as: V.self)
            let a1 = pa.loadUnaligned(fromByteOffset: 32, as: V.self)
            let p0 = b.row(k).assumingMemoryBound(to: Float.self)
            let p1 = b.row(k + 1).assumingMemoryBound(to: Float.self)
            c0.addProduct(a0, V(repeating: p0[0])); c1.addProduct(a0, V(repeating: p0[1]))
            c2.addProduct(a0, V(repeating: p0[2])); c3.addProduct(a0, V(repeating: p0[3]))
            d0.addProduct(a1, V(repeating: p1[0])); d1.addProduct(a1, V(repeating: p1[1]))
            d2.addProduct(a1, V(repeating: p1[2])); d3.addProduct(a1, V(repeating: p1[3]))
            pa += 64
            k += 2
        }
        if k < kc {
            let a0 = pa.loadUnaligned(as: V.self)
            let p0 = b.row(k).assumingMemoryBound(to: Float.self)
            c0.addProduct(a0, V(repeating: p0[0])); c1.addProduct(a0, V(repeating: p0[1]))
            c2.addProduct(a0, V(repeating: p0[2])); c3.addProduct(a0, V(repeating: p0[3]))
        }
        c0 += d0
        c1 += d1
        c2 += d2
        c3 += d3
        for r in 0..<8 {
            let t = tile + r * panelColumns
            t[0] = c0[r]
            t[1] = c1[r]
            t[2] = c2[r]
            t[3] = c3[r]
        }
    }
}

extension PackedGEMM {
    /// The kernel for a last panel of at most 16 columns.
    @inline(__always)
    static func narrowKernel<B: BRows>(_ cols: Int, _ kc: Int, _ a: UnsafePointer<Float>, _ b: B, _ tile: UnsafeMutablePointer<Float>) {
        if cols == 1 {
            kernel8x1(kc, a, b, tile)
        } else if cols <= 4 {
            kernel8x4(kc, a, b, tile)
        } else {
            kernel8x16(kc, a, b, tile)
        }
    }

    /// One column (N = 49 = 48 + 1): the 8 rows of A at step k times one broadcast B value,
    /// four steps in flight in separate accumulators.
    @inline(__always)
    static func kernel8x1<B: BRows>(_ kc: Int, _ a: UnsafePointer<Float>, _ b: B, _ tile: UnsafeMutablePointer<Float>) {
        typealias V = SIMD8<Float>
        var c0 = V(), c1 = V(), c2 = V(), c3 = V()
        var pa = UnsafeRawPointer(a)
        var k = 0
        while k + 4 <= kc {
            c0.addProduct(pa.loadUnaligned(as: V.self), V(repeating: b.row(k).load(as: Float.self)))
            c1.addProduct(pa.loadUnaligned(fromByteOffset: 32, as: V.self), V(repeating: b.row(k + 1).load(as: Float.self)))
            c2.addProduct(pa.loadUnaligned(fromByteOffset: 64, as: V.self), V(repeating: b.row(k + 2).load(as: Float.self)))
            c3.addProduct(pa.loadUnaligned(fromByteOffset: 96, as: V.self), V(repeating: b.row(k + 3).load(as: Float.self)))
            pa += 128
            k += 4
        }
        while k < kc {
            c0.addProduct(pa.loadUnaligned(as: V.self), V(repeating: b.row(k).load(as: Float.self)))
            pa += 32
            k += 1
        }
        let sum = (c0 + c1) + (c2 + c3)
        for r in 0..<8 { tile[r * panelColumns] = sum[r] }
    }
}

/// Where the 8 x 48 microkernel puts its block of C: the scratch tile (the caller then
/// commits it), or, for a full block computed in one depth block, straight into C with the
/// epilogue applied in registers (no round trip through the tile).
struct TileSink {
    let tile: UnsafeMutablePointer<Float>
    let c: UnsafeMutablePointer<Float>?
    let ldc: Int
    let bias: UnsafePointer<Float>?
    let residual: UnsafePointer<Float>?
    let residualStride: Int
    let relu: Bool
    /// Where the three vectors of a row of C go, in bytes from its start (apart for
    /// `SplitRows`, whose vectors come from different output rows).
    var offsets = (0, 64, 128)

    init(tile: UnsafeMutablePointer<Float>) {
        self.tile = tile
        c = nil
        ldc = 0
        bias = nil
        residual = nil
        residualStride = 0
        relu = false
    }

    init(direct c: UnsafeMutablePointer<Float>, ldc: Int, epilogue e: PackedGEMM.Epilogue, tile: UnsafeMutablePointer<Float>) {
        self.tile = tile
        self.c = c
        self.ldc = ldc
        bias = e.bias
        residual = e.residual
        residualStride = e.residualStride
        relu = e.relu
    }
}

/// Where row k of a microkernel's B operand starts.
protocol BRows {
    func row(_ k: Int) -> UnsafeRawPointer
    /// The three 16-float vectors of row k the 8 x 48 kernel reads.
    func vectors(_ k: Int) -> (UnsafeRawPointer, UnsafeRawPointer, UnsafeRawPointer)
}

extension BRows {
    @inline(__always) func vectors(_ k: Int) -> (UnsafeRawPointer, UnsafeRawPointer, UnsafeRawPointer) {
        let p = row(k)
        return (p, p + 64, p + 128)
    }
}

/// Three vectors from three places, each at `base + offsets[k]` floats: 48 columns of C
/// taken from up to three output rows of a direct convolution.
struct SplitRows: BRows {
    let bases: (UnsafeRawPointer, UnsafeRawPointer, UnsafeRawPointer)
    let offsets: UnsafePointer<Int>
    @inline(__always) func row(_ k: Int) -> UnsafeRawPointer { bases.0 + offsets[k] * 4 }
    @inline(__always) func vectors(_ k: Int) -> (UnsafeRawPointer, UnsafeRawPointer, UnsafeRawPointer) {
        let o = offsets[k] * 4
        return (bases.0 + o, bases.1 + o, bases.2 + o)
    }
}

/// Rows of a packed panel, `stride` bytes apart.
struct PackedRows: BRows {
    let base: UnsafeRawPointer
    let stride: Int
    @inline(__always) func row(_ k: Int) -> UnsafeRawPointer { base + k * stride }
}

/// Rows at `base + offsets[k]` floats.
struct IndirectRows: BRows {
    let base: UnsafeRawPointer
    let offsets: UnsafePointer<Int>
    @inline(__always) func row(_ k: Int) -> UnsafeRawPointer { base + offsets[k] * 4 }
}
