import Foundation

/// Errors reading or writing NumPy `.npy` files.
public struct NPYError: Error, CustomStringConvertible, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Reads and writes NumPy `.npy` files (format versions 1.0, 2.0 and 3.0).
///
/// Supported element types: little-endian float32 (`<f4`), uint8 (`|u1`), int64 (`<i8`);
/// C order only. Anything else is refused with an error that names it.
public enum NPY {
    static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]  // \x93NUMPY

    /// Parses `.npy` bytes into a tensor.
    public static func decode(_ data: Data) throws(NPYError) -> Tensor {
        let bytes = [UInt8](data)
        guard bytes.count >= 10, Array(bytes[0..<6]) == magic else {
            throw NPYError("not a .npy file (missing the \\x93NUMPY magic)")
        }
        let major = bytes[6]
        let headerLength: Int
        let headerStart: Int
        switch major {
        case 1:
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            headerStart = 10
        case 2, 3:
            guard bytes.count >= 12 else { throw NPYError("truncated .npy header") }
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
            headerStart = 12
        default:
            throw NPYError("unsupported .npy format version \(major).\(bytes[7])")
        }
        guard headerStart + headerLength <= bytes.count else { throw NPYError("truncated .npy header") }
        guard let header = String(bytes: bytes[headerStart..<headerStart + headerLength], encoding: .utf8) else {
            throw NPYError(".npy header is not text")
        }
        let descr = try field("descr", in: header)
        let fortran = try field("fortran_order", in: header)
        let shapeText = try field("shape", in: header)
        guard fortran == "False" else { throw NPYError("Fortran-order arrays are not supported; save with C order") }
        let shape = try parseShape(shapeText)
        let count = shape.reduce(1, *)
        let body = bytes[(headerStart + headerLength)...]
        let type: ElementType
        switch descr {
        case "'<f4'": type = .float32
        case "'|u1'", "'<u1'": type = .uint8
        case "'<i8'": type = .int64
        default:
            throw NPYError("unsupported .npy dtype \(descr); expected float32 ('<f4'), uint8 or int64")
        }
        let needed = count * type.byteSize
        guard body.count >= needed else {
            throw NPYError(".npy data is truncated: shape \(shape) needs \(needed) bytes, file has \(body.count)")
        }
        guard body.count == needed else {
            throw NPYError(".npy data has \(body.count - needed) bytes more than shape \(shape) needs")
        }
        switch type {
        case .float32:
            var out = [Float](repeating: 0, count: count)
            out.withUnsafeMutableBytes { dst in
                body.withUnsafeBytes { src in dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[0..<needed])) }
            }
            return Tensor(shape: shape, floats: out.map { Float(bitPattern: $0.bitPattern.littleEndian) })
        case .uint8:
            return Tensor(shape: shape, bytes: Array(body))
        case .int64:
            var out = [Int64](repeating: 0, count: count)
            out.withUnsafeMutableBytes { dst in
                body.withUnsafeBytes { src in dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[0..<needed])) }
            }
            return Tensor(shape: shape, int64s: out.map { Int64(littleEndian: $0) })
        }
    }

    /// Reads a `.npy` file.
    public static func read(contentsOf url: URL) throws(NPYError) -> Tensor {
        let data: Data
        do { data = Data(try FileBytes.contents(of: url.path, maxBytes: Int(Int32.max))) } catch { throw NPYError(error.description) }
        do { return try decode(data) } catch { throw NPYError("\(url.path): \(error.description)") }
    }

    /// Encodes a tensor as `.npy` (version 1.0, C order).
    public static func encode(_ tensor: Tensor) -> Data {
        let descr: String
        switch tensor.elementType {
        case .float32: descr = "<f4"
        case .uint8: descr = "|u1"
        case .int64: descr = "<i8"
        }
        let shapeText: String
        switch tensor.shape.count {
        case 0: shapeText = "()"
        case 1: shapeText = "(\(tensor.shape[0]),)"
        default: shapeText = "(" + tensor.shape.map(String.init).joined(separator: ", ") + ")"
        }
        var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shapeText), }"
        // Pad so that the data starts on a 64-byte boundary; the header ends in a newline.
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var out = Data(magic)
        out.append(contentsOf: [1, 0, UInt8(header.utf8.count & 0xFF), UInt8(header.utf8.count >> 8)])
        out.append(contentsOf: Array(header.utf8))
        switch tensor.storage {
        case .float32(let v): v.withUnsafeBytes { out.append(contentsOf: $0) }
        case .uint8(let v): out.append(contentsOf: v)
        case .int64(let v): v.withUnsafeBytes { out.append(contentsOf: $0) }
        }
        return out
    }

    /// Writes a tensor to a `.npy` file.
    public static func write(_ tensor: Tensor, to url: URL) throws(NPYError) {
        do { try encode(tensor).write(to: url, options: .atomic) } catch {
            throw NPYError("cannot write \(url.path): \(FileBytes.reason(error))")
        }
    }

    private static func field(_ name: String, in header: String) throws(NPYError) -> String {
        guard let keyRange = header.range(of: "'\(name)'") else {
            throw NPYError(".npy header has no '\(name)' field")
        }
        var rest = header[keyRange.upperBound...].drop { $0 == " " }
        guard rest.first == ":" else { throw NPYError("malformed .npy header near '\(name)'") }
        rest = rest.dropFirst().drop { $0 == " " }
        if rest.first == "(" {
            guard let close = rest.firstIndex(of: ")") else { throw NPYError("malformed .npy shape") }
            return String(rest[rest.startIndex...close])
        }
        let end = rest.firstIndex { $0 == "," || $0 == "}" } ?? rest.endIndex
        return String(rest[rest.startIndex..<end]).trimmingCharacters(in: .whitespaces)
    }

    private static func parseShape(_ text: String) throws(NPYError) -> [Int] {
        let inner = text.dropFirst().dropLast()
        var dims: [Int] = []
        for part in inner.split(separator: ",") {
            let t = part.trimmingCharacters(in: .whitespaces)
            if t.isEmpty { continue }
            guard let d = Int(t.hasSuffix("L") ? String(t.dropLast()) : t), d >= 0 else {
                throw NPYError("malformed .npy shape \(text)")
            }
            dims.append(d)
        }
        // Refuse absurd sizes before anything is allocated.
        var total = 1
        for d in dims {
            let (p, overflow) = total.multipliedReportingOverflow(by: d)
            guard !overflow, p <= 1 << 34 else { throw NPYError(".npy shape \(text) is too large") }
            total = p
        }
        return dims
    }
}
