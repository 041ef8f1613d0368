import CBottleFitZlib

/// Reader for the IDX format of (Fashion-)MNIST: a 4-byte magic number (two zero bytes,
/// the element type, the number of dimensions), one big-endian UInt32 per dimension, then
/// the elements. Only unsigned-byte files (type 0x08) are read.
///
/// Files may be gzip-compressed or not: zlib's `gzread` passes uncompressed files
/// through. The header is read and checked first and the data buffer is allocated only
/// then, with the exact size the header declares and below a cap, so neither a wrong
/// file nor a forged header can make the reader allocate gigabytes.
package struct IDXFile: Sendable {
    /// Dimensions from the header, outermost first.
    package let dimensions: [Int]
    /// The elements, row-major.
    package let bytes: [UInt8]

    /// 512 MiB: Fashion-MNIST's training images are 47 MB uncompressed.
    package static let defaultMaxBytes = 512 << 20

    /// Reads the IDX file at `path`, which must have exactly `rank` dimensions, each in
    /// 1...`maxDimension`, and hold exactly as many elements as they multiply to.
    package static func read(path: String, rank: Int, maxDimension: Int, maxBytes: Int = defaultMaxBytes) throws(ImagingError) -> IDXFile {
        guard let file = gzopen(path, "rb") else {
            throw .fileUnreadable(path: path, reason: "zlib could not open it")
        }
        defer { gzclose_r(file) }

        var magic = [UInt8](repeating: 0, count: 4)
        try readExactly(file, into: &magic, path: path, what: "magic number")
        let magicText = magic.map { String($0, radix: 16) }.joined(separator: " ")
        guard magic[0] == 0, magic[1] == 0, magic[2] == 0x08, Int(magic[3]) == rank else {
            throw .invalidDataset(path: path, reason: "magic number \(magicText) is not that of an unsigned-byte IDX file with \(rank) dimensions (00 00 08 0\(rank))")
        }
        var header = [UInt8](repeating: 0, count: 4 * rank)
        try readExactly(file, into: &header, path: path, what: "dimensions")
        var dimensions: [Int] = []
        var total = 1
        for d in 0..<rank {
            let value = header[(4 * d)..<(4 * d + 4)].reduce(0) { $0 << 8 | Int($1) }
            guard (1...maxDimension).contains(value) else {
                throw .invalidDataset(path: path, reason: "dimension \(d) is \(value), outside 1...\(maxDimension)")
            }
            // Each factor is at most maxDimension (well below 2^31): overflow shows as > maxBytes first.
            total *= value
            guard total <= maxBytes else {
                throw .invalidDataset(path: path, reason: "header declares more than \(maxBytes) bytes of data")
            }
            dimensions.append(value)
        }

        var bytes = [UInt8](repeating: 0, count: total)
        try readExactly(file, into: &bytes, path: path, what: "\(total) bytes of data")
        // Nothing may follow; reading on also makes zlib check the gzip trailer (CRC, length).
        var extra: UInt8 = 0
        let more = gzread(file, &extra, 1)
        guard more == 0 else {
            throw .invalidDataset(path: path, reason: more < 0 ? zlibError(file) : "more data than the header declares")
        }
        if let problem = zlibProblem(file) { throw .invalidDataset(path: path, reason: problem) }
        return IDXFile(dimensions: dimensions, bytes: bytes)
    }

    /// Fills `buffer` from the file or throws, naming what was being read.
    private static func readExactly(_ file: gzFile, into buffer: inout [UInt8], path: String, what: String) throws(ImagingError) {
        var filled = 0
        var failure: String?
        buffer.withUnsafeMutableBytes { raw in
            while filled < raw.count {
                // gzread takes an unsigned count but returns an int: read in chunks.
                let chunk = UInt32(min(raw.count - filled, 1 << 30))
                let n = gzread(file, raw.baseAddress! + filled, chunk)
                if n < 0 { failure = zlibError(file); return }
                if n == 0 { break }
                filled += Int(n)
            }
        }
        if let failure { throw .invalidDataset(path: path, reason: "reading the \(what): \(failure)") }
        guard filled == buffer.count else {
            // gzread reports a truncated gzip stream as a short read, not -1.
            let detail = zlibProblem(file).map { " (\($0))" } ?? ""
            throw .invalidDataset(path: path, reason: "file ends after \(filled) of the \(buffer.count) bytes of the \(what)\(detail)")
        }
    }

    private static func zlibError(_ file: gzFile) -> String {
        var code: Int32 = 0
        guard let text = gzerror(file, &code) else { return "zlib error \(code)" }
        return String(cString: text)
    }

    /// A pending zlib error, if any; Z_BUF_ERROR is how a truncated gzip stream shows.
    private static func zlibProblem(_ file: gzFile) -> String? {
        var code: Int32 = 0
        let text = gzerror(file, &code)
        guard code != Z_OK else { return nil }
        return text.map { String(cString: $0) } ?? "zlib error \(code)"
    }
}
