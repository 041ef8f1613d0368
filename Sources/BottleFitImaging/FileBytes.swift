#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Whole-file reads with a size cap, through POSIX calls so that the size check and the
/// read see the same open file and every failure carries its `strerror` text.
package enum FileBytes {
    /// The contents of the regular file at `path`, refused when larger than `maxBytes`.
    package static func contents(of path: String, maxBytes: Int) throws(ImagingError) -> [UInt8] {
        let fd = retryingEINTR { open(path, O_RDONLY | O_CLOEXEC) }
        guard fd >= 0 else { throw .fileUnreadable(path: path, reason: errnoText()) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw .fileUnreadable(path: path, reason: errnoText()) }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw .fileUnreadable(path: path, reason: "not a regular file")
        }
        let size = Int(info.st_size)
        guard size <= maxBytes else {
            throw .fileUnreadable(path: path, reason: "\(size) bytes, more than the limit of \(maxBytes)")
        }
        var failure: String?
        let bytes = [UInt8](unsafeUninitializedCapacity: size) { buffer, initialized in
            while initialized < size {
                let n = retryingEINTR { read(fd, buffer.baseAddress! + initialized, size - initialized) }
                if n < 0 { failure = errnoText(); return }
                if n == 0 { break }  // the file shrank since fstat: keep what is there
                initialized += n
            }
        }
        if let failure { throw .fileUnreadable(path: path, reason: failure) }
        return bytes
    }

    private static func retryingEINTR<T: BinaryInteger>(_ call: () -> T) -> T {
        while true {
            let result = call()
            if result >= 0 || errno != EINTR { return result }
        }
    }

    private static func errnoText() -> String { String(cString: strerror(errno)) }
}
