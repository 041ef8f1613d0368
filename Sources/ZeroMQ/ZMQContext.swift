import CBottleFitZMQ

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A libzmq context handle that may cross isolation domains.
///
/// Safe to share because libzmq documents contexts as thread-safe: any thread may create
/// sockets in it or shut it down. (Sockets are not, and are never boxed like this.)
struct ZMQContextHandle: @unchecked Sendable {
    let pointer: UnsafeMutableRawPointer
}

/// A ZeroMQ context: the I/O threads and the `inproc://` namespace shared by its sockets.
///
/// Create one per process and share it; sockets keep it alive, and it is terminated
/// (`zmq_ctx_term`) when the last reference goes, which is after every socket has closed.
public final class ZMQContext: Sendable {
    let handle: ZMQContextHandle

    /// Creates a context with `ioThreads` background I/O threads, scheduled as `SCHED_FIFO` at
    /// `realtimePriority` (1...99) when it is given.
    ///
    /// libzmq aborts the process if its I/O thread cannot take the real-time priority, so check
    /// first that this process may (the load generator puts its own thread there before).
    /// The corresponding C functions are `zmq_ctx_new` and `zmq_ctx_set(ZMQ_IO_THREADS,
    /// ZMQ_THREAD_SCHED_POLICY, ZMQ_THREAD_PRIORITY)`.
    public init(ioThreads: Int = 1, realtimePriority: Int? = nil) throws(ZMQError) {
        guard let pointer = zmq_ctx_new() else { throw ZMQError.last("zmq_ctx_new") }
        // Configure before storing the handle: once stored, a throw would run deinit as well.
        var error: ZMQError?
        if ioThreads != 1 {
            if let n = Int32(exactly: ioThreads), n >= 0 {
                if zmq_ctx_set(pointer, ZMQ_IO_THREADS, n) != 0 { error = .last("zmq_ctx_set(ZMQ_IO_THREADS, \(n))") }
            } else {
                error = ZMQError(errno: EINVAL, operation: "zmq_ctx_set(ZMQ_IO_THREADS, \(ioThreads))")
            }
        }
        if error == nil, let priority = realtimePriority {
            #if os(Linux)
            if let p = Int32(exactly: priority), (1...99).contains(p) {
                if zmq_ctx_set(pointer, ZMQ_THREAD_SCHED_POLICY, SCHED_FIFO) != 0 {
                    error = .last("zmq_ctx_set(ZMQ_THREAD_SCHED_POLICY, SCHED_FIFO)")
                } else if zmq_ctx_set(pointer, ZMQ_THREAD_PRIORITY, p) != 0 {
                    error = .last("zmq_ctx_set(ZMQ_THREAD_PRIORITY, \(p))")
                }
            } else {
                error = ZMQError(errno: EINVAL, operation: "zmq_ctx_set(ZMQ_THREAD_PRIORITY, \(priority))")
            }
            #else
            error = ZMQError(errno: ENOTSUP, operation: "zmq_ctx_set(ZMQ_THREAD_SCHED_POLICY, SCHED_FIFO)")
            #endif
        }
        if let error {
            // No socket exists yet, so this cannot block; the configuration error is the one to report.
            _ = zmq_ctx_term(pointer)
            throw error
        }
        handle = ZMQContextHandle(pointer: pointer)
    }

    /// Makes every blocking call on this context's sockets fail with `ETERM`, from any thread,
    /// so loops blocked in receive or poll notice shutdown. Sockets must still be closed.
    /// The corresponding C function is `zmq_ctx_shutdown`.
    public func shutdown() throws(ZMQError) {
        if zmq_ctx_shutdown(handle.pointer) != 0 { throw ZMQError.last("zmq_ctx_shutdown") }
    }

    /// Whether the linked libzmq supports a capability such as `"curve"`, `"ipc"` or `"draft"`.
    /// The corresponding C function is `zmq_has`.
    public static func has(_ capability: String) -> Bool { zmq_has(capability) != 0 }

    /// The linked libzmq version. The corresponding C function is `zmq_version`.
    public static var version: (major: Int, minor: Int, patch: Int) {
        var major: Int32 = 0, minor: Int32 = 0, patch: Int32 = 0
        zmq_version(&major, &minor, &patch)
        return (Int(major), Int(minor), Int(patch))
    }

    /// The corresponding C function is `zmq_ctx_term`, retried on `EINTR` as its manual says.
    /// Every socket holds a reference to the context, so none is open here and this does not block.
    deinit {
        while zmq_ctx_term(handle.pointer) != 0 {
            let code = zmq_errno()
            if code == EINTR { continue }
            // EFAULT is the only other documented failure (an invalid context): a bug in this type.
            assertionFailure("zmq_ctx_term failed: \(String(cString: zmq_strerror(code)))")
            break
        }
    }
}

/// A CURVE key pair in Z85 text form (40 characters each), for `curvePublicKey`/`curveSecretKey`.
public struct ZMQCurveKeyPair: Sendable, Equatable {
    public var publicKey: String
    public var secretKey: String

    public init(publicKey: String, secretKey: String) {
        self.publicKey = publicKey
        self.secretKey = secretKey
    }

    /// Generates a new key pair. Fails with `ENOTSUP` when libzmq was built without CURVE.
    /// The corresponding C function is `zmq_curve_keypair`.
    public static func generate() throws(ZMQError) -> ZMQCurveKeyPair {
        var publicKey = [CChar](repeating: 0, count: 41)
        var secretKey = [CChar](repeating: 0, count: 41)
        if zmq_curve_keypair(&publicKey, &secretKey) != 0 { throw ZMQError.last("zmq_curve_keypair") }
        return ZMQCurveKeyPair(
            publicKey: String(decoding: publicKey.prefix(40).map { UInt8(bitPattern: $0) }, as: UTF8.self),
            secretKey: String(decoding: secretKey.prefix(40).map { UInt8(bitPattern: $0) }, as: UTF8.self))
    }
}
