#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// Where whole log lines go: a file descriptor written with one `write(2)` loop per line under a
/// lock, so lines from many threads never interleave, or a closure (tests, merging).
public struct LogLineSink: Sendable {
    private let emit: @Sendable (String) -> Void

    /// Lines go to `emit`, one call per line, without the newline.
    public init(_ emit: @escaping @Sendable (String) -> Void) { self.emit = emit }

    /// Writes `line` and a newline.
    public func write(_ line: String) { emit(line) }

    /// Standard error, shared by every handler of the process.
    public static let standardError = LogLineSink { line in FileDescriptorWriter.standardError.write(line + "\n") }

    /// Standard output, shared by every writer of the process.
    public static let standardOutput = LogLineSink { line in FileDescriptorWriter.standardOutput.write(line + "\n") }
}

/// Writes whole strings to one file descriptor under a lock, retrying short writes and `EINTR`.
/// The corresponding C function is `write`.
final class FileDescriptorWriter: Sendable {
    private let descriptor: Int32
    private let lock = Mutex(())

    static let standardError = FileDescriptorWriter(descriptor: 2)
    static let standardOutput = FileDescriptorWriter(descriptor: 1)

    init(descriptor: Int32) { self.descriptor = descriptor }

    func write(_ text: String) {
        var bytes = Array(text.utf8)
        lock.withLock { _ in
            bytes.withUnsafeMutableBytes { raw in
                var offset = 0
                while offset < raw.count {
                    let n = systemWrite(descriptor, raw.baseAddress! + offset, raw.count - offset)
                    if n < 0 {
                        if errno == EINTR { continue }
                        return  // a closed pipe: the line is lost, as with any logger writing to it
                    }
                    offset += n
                }
            }
        }
    }
}

/// `write(2)` under a name the writer's own `write` does not shadow.
private func systemWrite(_ descriptor: Int32, _ bytes: UnsafeRawPointer, _ count: Int) -> Int {
    write(descriptor, bytes, count)
}
