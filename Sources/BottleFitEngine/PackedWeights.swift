import Foundation
import Synchronization

/// A constant weight matrix [M, K] (row-major) packed for `PackedGEMM`; immutable once made,
/// shared by the plans of a session (`NodeContext.prepared`).
final class PackedWeights {
    let rows: Int
    let depth: Int
    /// The instruction set the multiplications run on (the session's).
    let instructionSet: KernelInstructionSet
    let buffer: AlignedBuffer
    var pointer: UnsafePointer<Float> { UnsafePointer(buffer.pointer.assumingMemoryBound(to: Float.self)) }

    /// Packs A, or with `transposed` packs A from its transpose stored row-major (a[k·lda + row]).
    init(
        _ a: UnsafePointer<Float>, lda: Int, rows: Int, depth: Int, transposed: Bool = false, instructionSet: KernelInstructionSet
    ) {
        self.rows = rows
        self.depth = depth
        self.instructionSet = instructionSet
        buffer = AlignedBuffer(byteCount: PackedGEMM.packedCount(rows: rows, depth: depth) * 4)
        PackedGEMM.packA(
            a, lda: lda, rows: rows, depth: depth, transposed: transposed, into: buffer.pointer.assumingMemoryBound(to: Float.self))
    }

    /// Writes B[rows, columns] row-major with row stride `ldc` at the pointer.
    typealias Fill = (_ rows: Range<Int>, _ columns: Range<Int>, _ into: UnsafeMutablePointer<Float>, _ ldc: Int) -> Void

    /// Columns a thread packs and multiplies at a time when it owns its columns: about
    /// 512 KiB of packed B, so it stays in L2 while A streams past.
    static func chunkColumns(depth k: Int, columns n: Int, parts: Int) -> Int {
        let fit = Swift.max(PackedGEMM.panelColumns, (128 * 1024 / Swift.max(1, k)) / 48 * 48)
        let share = (n + parts - 1) / parts
        return Swift.min(fit, (share + 47) / 48 * 48)
    }

    /// Whether threads split C by columns (each packing its own part of B) rather than
    /// by rows (B packed once, shared, each thread reading its part of A).
    static func splitsColumns(rows m: Int, columns n: Int, parts: Int) -> Bool {
        parts <= 1 || (n >= m && n >= 2 * PackedGEMM.panelColumns * parts)
    }

    /// Where part t's columns start when threads split C by columns: at whole panels of 48
    /// when that leaves the parts within 10% of an equal share, else at multiples of 16
    /// (a 14x14 map, 196 columns = 4 panels + 4, in panels would be 144 + 52 columns).
    static func columnBoundary(_ t: Int, columns n: Int, parts: Int) -> Int {
        let panels = (n + 47) / 48
        let perThread = (panels + parts - 1) / parts
        if perThread * 48 * parts * 10 <= n * 11 { return Swift.min(n, t * perThread * 48) }
        return t >= parts ? n : Swift.min(n, (n * t / parts + 8) / 16 * 16)
    }

    /// Workspace floats `run` needs for these dimensions and threads.
    static func workspaceFloats(rows m: Int, depth k: Int, columns n: Int, threads parts: Int) -> Int {
        let tiles = parts * PackedGEMM.tileCount
        if splitsColumns(rows: m, columns: n, parts: parts) {
            return tiles + parts * PackedGEMM.packedBCount(depth: k, columns: chunkColumns(depth: k, columns: n, parts: parts))
        }
        return tiles + PackedGEMM.packedBCount(depth: k, columns: n)
    }

    /// C[M, n] = A·B plus the epilogue, B produced by `fill` straight into the packed layout,
    /// over `parts` engine threads (`parts` as planned: `workspace` holds
    /// `workspaceFloats(rows:depth:columns:threads: parts)` floats).
    func run(
        columns n: Int, c: UnsafeMutablePointer<Float>, ldc: Int, epilogue: PackedGEMM.Epilogue, parts planned: Int,
        workspace: UnsafeMutablePointer<Float>, parallel: Parallel, fill: Fill
    ) {
        // Work is cut for the planned thread count (the workspace's layout); with fewer
        // threads now, a thread runs several parts in turn.
        let parts = Swift.max(1, planned)
        let tiles = workspace
        let data = workspace + parts * PackedGEMM.tileCount
        if Self.splitsColumns(rows: rows, columns: n, parts: parts) {
            let chunk = Self.chunkColumns(depth: depth, columns: n, parts: parts)
            let chunkFloats = PackedGEMM.packedBCount(depth: depth, columns: chunk)
            parallel.forEach(parts) { threads in
                for t in threads {
                    var j = Self.columnBoundary(t, columns: n, parts: parts)
                    let end = Self.columnBoundary(t + 1, columns: n, parts: parts)
                    while j < end {
                        let cols = Swift.min(chunk, end - j)
                        let mine = data + t * chunkFloats
                        pack(columns: j..<j + cols, rows: 0..<depth, into: mine, fill: fill)
                        var e = epilogue
                        e.residual = epilogue.residual.map { $0 + j }
                        multiply(packedB: mine, columns: cols, c: c + j, ldc: ldc, epilogue: e, tile: tiles + t * PackedGEMM.tileCount)
                        j += cols
                    }
                }
            }
        } else {
            parallel.forEach(depth, minimumPerThread: 16) { rows in
                pack(columns: 0..<n, rows: rows, into: data, fill: fill)
            }
            let panelCount = PackedGEMM.panels(rows: rows)
            parallel.forEach(parts) { threads in
                for t in threads {
                    let p0 = panelCount * t / parts, p1 = panelCount * (t + 1) / parts
                    guard p1 > p0 else { continue }
                    multiply(
                        packedB: data, columns: n, c: c, ldc: ldc, epilogue: epilogue, panels: p0..<p1,
                        tile: tiles + t * PackedGEMM.tileCount)
                }
            }
        }
    }

    /// The same on the calling thread alone (for callers that split work themselves):
    /// `workspace` holds `workspaceFloats(rows:depth:columns:threads: 1)` floats.
    func runSerially(
        columns n: Int, c: UnsafeMutablePointer<Float>, ldc: Int, epilogue: PackedGEMM.Epilogue = .none,
        workspace: UnsafeMutablePointer<Float>, fill: Fill
    ) {
        let chunk = Self.chunkColumns(depth: depth, columns: n, parts: 1)
        let data = workspace + PackedGEMM.tileCount
        var j = 0
        while j < n {
            let cols = Swift.min(chunk, n - j)
            pack(columns: j..<j + cols, rows: 0..<depth, into: data, fill: fill)
            var e = epilogue
            e.residual = epilogue.residual.map { $0 + j }
            multiply(packedB: data, columns: cols, c: c + j, ldc: ldc, epilogue: e, tile: workspace)
            j += cols
        }
    }

    /// Packs B[rows, columns] (columns starting on a panel boundary relative to `into`,
    /// which holds the packed form of exactly these columns) panel by panel.
    func pack(columns: Range<Int>, rows: Range<Int>, into packed: UnsafeMutablePointer<Float>, fill: Fill) {
        guard !rows.isEmpty else { return }
        var j = columns.lowerBound
        while j < columns.upperBound {
            let cols = Swift.min(PackedGEMM.panelColumns, columns.upperBound - j)
            let w = (cols + 15) / 16 * 16
            let panel = packed + (j - columns.lowerBound) * depth + rows.lowerBound * w
            fill(rows, j..<j + cols, panel, w)
            if cols < w {
                for r in 0..<rows.count { (panel + r * w + cols).update(repeating: 0, count: w - cols) }
            }
            j += cols
        }
    }

    func multiply(
        packedB: UnsafePointer<Float>, columns n: Int, c: UnsafeMutablePointer<Float>, ldc: Int,
        epilogue: PackedGEMM.Epilogue, panels: Range<Int>? = nil, tile: UnsafeMutablePointer<Float>
    ) {
        PackedGEMM.multiply(
            instructionSet, packedA: pointer, rows: rows, depth: depth, panels: panels ?? 0..<PackedGEMM.panels(rows: rows),
            packedB: packedB, columns: n, c: c, ldc: ldc, epilogue: epilogue, tile: tile)
    }
}
