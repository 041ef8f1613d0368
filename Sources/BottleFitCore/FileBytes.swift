import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A file that could not be read, with a reason a user can act on ("No such file or directory",
/// "a folder, not a file"), never a Foundation error domain or code.
package struct FileReadError: Error, CustomStringConvertible, Equatable {
    package var path: String
    package var reason: String
    package var description: String { "cannot read \(path): \(reason)" }
}

/// Whole-file reads with a size cap, through POSIX calls so that the size check and the
/// read see the same open file and every failure carries its `strerror` text.
package enum FileBytes {
    /// The contents of the regular file at `path`, refused when larger than `maxBytes`.
    package static func contents(of path: String, maxBytes: Int) throws(FileReadError) -> [UInt8] {
        let fd = retryingEINTR { open(path, O_RDONLY | O_CLOEXEC) }
        guard fd >= 0 else { throw FileReadError(path: path, reason: errnoText()) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw FileReadError(path: path, reason: errnoText()) }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            let what = (info.st_mode & S_IFMT) == S_IFDIR ? "a folder, not a file" : "not a regular file"
            throw FileReadError(path: path, reason: what)
        }
        let size = Int(info.st_size)
        guard size <= maxBytes else {
            throw FileReadError(path: path, reason: "\(size) bytes, more than the limit of \(maxBytes)")
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
        if let failure { throw FileReadError(path: path, reason: failure) }
        return bytes
    }

    /// The UTF-8 text of the file at `path` (a configuration file: topology, scenario, key list).
    package static func text(of path: String, maxBytes: Int = 16 << 20) throws(FileReadError) -> String {
        let bytes = try contents(of: path, maxBytes: maxBytes)
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw FileReadError(path: path, reason: "not UTF-8 text")
        }
        return text
    }

    /// Why a Foundation file operation (a write, a folder listing) failed, as the system says it
    /// ("Permission denied", "No such file or directory"), not as "NSCocoaErrorDomain error 513".
    package static func reason(_ error: any Error) -> String {
        let nsError = error as NSError
        if let underlying = nsError.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(underlying.code)))
        }
        if nsError.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(nsError.code))) }
        if nsError.domain == NSCocoaErrorDomain {
            switch nsError.code {
            case NSFileNoSuchFileError, NSFileReadNoSuchFileError: return "No such file or directory"
            case NSFileReadNoPermissionError, NSFileWriteNoPermissionError: return "Permission denied"
            case NSFileWriteOutOfSpaceError: return "No space left on device"
            case NSFileWriteVolumeReadOnlyError: return "Read-only file system"
            case NSFileReadInapplicableStringEncodingError: return "not UTF-8 text"
            case NSFileWriteFileExistsError: return "File exists"
            default: return "the system refused (error \(nsError.code))"
            }
        }
        return "\(error)"
    }

    private static func retryingEINTR<T: BinaryInteger>(_ call: () -> T) -> T {
        while true {
            let result = call()
            if result >= 0 || errno != EINTR { return result }
        }
    }

    private static func errnoText() -> String { String(cString: strerror(errno)) }
}
