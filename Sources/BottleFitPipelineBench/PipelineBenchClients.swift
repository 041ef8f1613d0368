import BottleFitCore
import BottleFitEngine
import BottleFitProtocol
import CBottleFitZMQ
import Dispatch
import Foundation
import Synchronization
import ZeroMQ

// MARK: - The pieces of a run

/// One measured side of a run: round trips per second, and frames answered with ERROR.
public struct Measured: Sendable {
    public var rate: Double
    public var cpuMicroseconds: Double
    public var errors: Int
}

/// Endpoints on loopback: `tcp://127.0.0.1:*` (the OS picks the port) or ipc in a private directory.
struct EndpointFactory {
    var transport: PipelineBench.Transport
    var directory: String
    func make(_ name: String) -> String {
        transport == .tcp ? "tcp://127.0.0.1:*" : "ipc://\(directory)/\(name)"
    }
}

/// What the cameras send: one FRAME template, a window, and the run's warm-up and timed counts.
public struct CameraLoad: Sendable {
    var model: String
    var payload: FramePayload
    var window: Int
    /// Untimed round trips, then timed ones; `count` 0 means "until the run is stopped".
    var warmup: Int
    var count: Int
    /// Round trips the cameras send in all.
    var target: Int { count == 0 ? .max : warmup + count }
}

/// Counters and timestamps that camera and worker threads share during one run.
final class RunState: Sendable {
    let stop = Atomic<Bool>(false)
    /// Round trips handed out to cameras (a camera takes one before sending a frame).
    let issued = Atomic<Int>(0)
    let completed = Atomic<Int>(0)
    let errors = Atomic<Int>(0)
    /// Uptime in ns when `warmup` and `warmup + count` round trips had completed; 0 until then.
    let startedAt = Atomic<UInt64>(0)
    let finishedAt = Atomic<UInt64>(0)
    /// Process CPU time (user + system, µs) at those two moments.
    let cpuAtStart = Atomic<UInt64>(0)
    let cpuAtFinish = Atomic<UInt64>(0)
    /// Every RESULT, for the end-to-end window.
    let clock = CompletionClock()
}

/// Counts completions and remembers when the last one happened, so a window can start and end
/// just after a burst (a batch's answers arrive together): counting whole batches only, the
/// rate of a window of a few batches is not off by a fraction of a batch.
final class CompletionClock: Sendable {
    let count = Atomic<Int>(0)
    let lastAt = Atomic<UInt64>(0)

    func record(_ n: Int) {
        count.add(n, ordering: .relaxed)
        lastAt.store(DispatchTime.now().uptimeNanoseconds, ordering: .releasing)
    }

    /// Waits for the next completion, then until none came for `quiet` (at most `maxWait` in all),
    /// and returns the count and the time of the last completion.
    func sampleAfterBurst(quiet: UInt64 = 5_000_000, maxWait: UInt64 = 2_000_000_000) -> (count: Int, at: UInt64) {
        let start = DispatchTime.now().uptimeNanoseconds
        let first = count.load(ordering: .acquiring)
        while count.load(ordering: .acquiring) == first && DispatchTime.now().uptimeNanoseconds - start < maxWait { usleep(200) }
        while true {
            let (c, at) = (count.load(ordering: .acquiring), lastAt.load(ordering: .acquiring))
            let now = DispatchTime.now().uptimeNanoseconds
            if now &- at >= quiet || now - start >= maxWait { return (c, at == 0 ? now : at) }
            usleep(500)
        }
    }

    /// Completions per second between two samples.
    static func rate(from a: (count: Int, at: UInt64), to b: (count: Int, at: UInt64)) -> Double {
        b.at > a.at ? Double(b.count - a.count) / (Double(b.at - a.at) / 1e9) : 0
    }
}

/// User + system CPU time of the whole process so far, in microseconds (`getrusage(RUSAGE_SELF)`).
func processCPUMicroseconds() -> UInt64 {
    var usage = rusage()
    #if canImport(Glibc)
    let who = RUSAGE_SELF.rawValue
    #else
    let who = RUSAGE_SELF
    #endif
    guard getrusage(who, &usage) == 0 else { return 0 }
    func us(_ t: timeval) -> UInt64 { UInt64(max(0, t.tv_sec)) * 1_000_000 + UInt64(max(0, t.tv_usec)) }
    return us(usage.ru_utime) + us(usage.ru_stime)
}

/// A camera DEALER sending FRAMEs as fast as its window allows (docs/protocol.md, section 9).
enum CameraSender {
    static func run(context: ZMQContext, endpoint: String, id: String, load: CameraLoad, state: RunState) {
        do throws(ZMQError) {
            let socket = try ZMQSocket(context, type: .dealer, linger: 0)
            // As a camera sets them (docs/protocol.md, section 9).
            try socket.setOption(.immediate, true)
            try socket.setOption(.maxMessageSize, Int64(ProtocolLimits.default.maxMessageBytes))
            try socket.setOption(.receiveTimeout, 20)
            try socket.setOption(.sendTimeout, 20)
            try socket.connect(endpoint)
            // Encoded once with sequence UInt64.max, so "s" is a uint 64 whose 8 bytes are patched per
            // frame: valid msgpack (any integer width is allowed) without re-encoding 10 KB each time.
            let now = UInt64(Date().timeIntervalSince1970 * 1000)
            guard var frame = try? Message.frame(FrameMessage(
                cameraID: id, sequence: .max, model: load.model, payload: load.payload,
                deadline: now + 3_600_000, sentAt: now)).encoded(),
                  let offset = sequenceOffset(frame)
            else { preconditionFailure("cannot encode the benchmark FRAME") }
            var sequence: UInt64 = 0
            var outstanding = 0
            var ticketsLeft = true
            let target = load.target
            while !state.stop.load(ordering: .relaxed) {
                while ticketsLeft && outstanding < load.window {
                    guard state.issued.add(1, ordering: .relaxed).oldValue < target else { ticketsLeft = false; break }
                    sequence += 1
                    withUnsafeBytes(of: sequence.bigEndian) { bytes in
                        for i in 0..<8 { frame[offset + i] = bytes[i] }
                    }
                    do throws(ZMQError) { try socket.send([[], frame]) } catch where error.isWouldBlock {
                        // No broker yet (ZMQ_IMMEDIATE) or its queue is full: give the ticket back, read replies.
                        state.issued.subtract(1, ordering: .relaxed)
                        break
                    }
                    outstanding += 1
                }
                if !ticketsLeft && outstanding == 0 { return }
                guard let reply = try receiveOrNil(socket, blocking: true) else { continue }
                var next: [[UInt8]]? = reply
                while let message = next {
                    if message.count == 2, let header = try? MessageHeader.peek(message[1]) {
                        if header.type == "result" {
                            outstanding -= 1
                            let n = state.completed.add(1, ordering: .acquiringAndReleasing).newValue
                            state.clock.record(1)
                            if n == load.warmup {
                                state.cpuAtStart.store(processCPUMicroseconds(), ordering: .relaxed)
                                state.startedAt.store(DispatchTime.now().uptimeNanoseconds, ordering: .releasing)
                            }
                            if n == target {
                                state.cpuAtFinish.store(processCPUMicroseconds(), ordering: .relaxed)
                                state.finishedAt.store(DispatchTime.now().uptimeNanoseconds, ordering: .releasing)
                            }
                        } else if header.type == "error" {
                            outstanding -= 1
                            state.errors.add(1, ordering: .relaxed)
                            // The frame was not delivered: its ticket goes back, so the count stays exact.
                            state.issued.subtract(1, ordering: .relaxed)
                            ticketsLeft = true
                        }
                    }
                    next = try receiveOrNil(socket, blocking: false)
                }
            }
        } catch {
            reportError("camera \(id): \(error)")
            state.stop.store(true, ordering: .releasing)
        }
    }

    /// Where the 8 bytes of `"s": uint64` start in an encoded FRAME (`a1 73 cf ...`).
    static func sequenceOffset(_ frame: [UInt8]) -> Int? {
        let marker: [UInt8] = [0xa1, 0x73, 0xcf] + [UInt8](repeating: 0xff, count: 8)
        guard frame.count >= marker.count else { return nil }
        for i in 0...(frame.count - marker.count) where frame[i..<(i + marker.count)].elementsEqual(marker) { return i + 3 }
        return nil
    }
}

/// One receive: blocking up to the socket's receive timeout, or not at all; nil when nothing came.
func receiveOrNil(_ socket: ZMQSocket, blocking: Bool) throws(ZMQError) -> [[UInt8]]? {
    if !blocking { return try socket.tryReceive() }
    do { return try socket.receive() } catch where error.isWouldBlock { return nil }
}

/// A worker that computes nothing: it answers each FRAME at once with a valid RESULT for its (c, s).
///
/// Behind the broker it is a protocol worker (READY, CREDIT every 64 answers, HEARTBEAT when
/// idle); behind `zmq_proxy` it is a DEALER echoer that gets `[camera-rid, empty, FRAME]` and
/// sends `[camera-rid, empty, RESULT]`. Both peek and encode the same way, so they cost the same.
enum InstantWorker {
    static let creditBatch = 64

    static func run(context: ZMQContext, endpoint: String, id: String, behindBroker: Bool, state: RunState) {
        do throws(ZMQError) {
            let socket = try ZMQSocket(context, type: .dealer, linger: 0)
            // As a worker sets them (docs/protocol.md, section 9), behind the proxy too.
            try socket.setOption(.immediate, true)
            try socket.setOption(.maxMessageSize, Int64(ProtocolLimits.default.maxMessageBytes))
            try socket.setOption(.receiveTimeout, 20)
            try socket.setOption(.sendTimeout, 1000)  // a send stuck for 1 s ends the run with an error
            try socket.connect(endpoint)
            func control(_ message: Message) throws(ZMQError) {
                guard let bytes = try? message.encoded() else { preconditionFailure("cannot encode \(message.type)") }
                try socket.send([[], bytes])
            }
            if behindBroker { try control(.ready(ReadyMessage(workerID: id, models: ["bench"], credit: 4096))) }
            var unreturned = 0
            var lastSent = DispatchTime.now().uptimeNanoseconds
            while !state.stop.load(ordering: .relaxed) {
                var next = try receiveOrNil(socket, blocking: true)
                while let message = next {
                    // Behind the broker: [empty, camera-rid, empty, FRAME]; behind the proxy: [camera-rid, empty, FRAME].
                    let envelope = behindBroker ? 4 : 3
                    if message.count == envelope, let header = try? MessageHeader.peek(message[envelope - 1]),
                       header.type == "frame", let camera = header.cameraID, let sequence = header.sequence,
                       let result = try? Message.result(ResultMessage(
                           cameraID: camera, sequence: sequence, classIndices: [0], scores: [1], queuedMilliseconds: 0,
                           computeMilliseconds: 0, batchSize: 1, workerID: id)).encoded() {
                        var reply = Array(message.dropLast())
                        reply.append(result)
                        try socket.send(reply)
                        unreturned += 1
                        if behindBroker && unreturned >= creditBatch {
                            try control(.credit(CreditMessage(credits: unreturned)))
                            unreturned = 0
                        }
                        lastSent = DispatchTime.now().uptimeNanoseconds
                    }
                    next = try receiveOrNil(socket, blocking: false)
                }
                if behindBroker && DispatchTime.now().uptimeNanoseconds - lastSent > 500_000_000 {
                    if unreturned > 0 { try control(.credit(CreditMessage(credits: unreturned))); unreturned = 0 }
                    else { try control(.heartbeat(HeartbeatMessage())) }
                    lastSent = DispatchTime.now().uptimeNanoseconds
                }
            }
        } catch {
            reportError("worker \(id): \(error)")
            state.stop.store(true, ordering: .releasing)
        }
    }
}

/// The baseline: libzmq's own `zmq_proxy(frontend ROUTER, backend DEALER)` on its own thread and
/// context (as the broker has its own), bound where the broker would be.
final class ProxyBaseline {
    /// A libzmq context pointer: contexts are thread-safe, and `zmq_ctx_shutdown` is how another
    /// thread ends a `zmq_proxy` (it returns `ETERM`), so sharing it is safe.
    private struct ContextPointer: @unchecked Sendable { let raw: UnsafeMutableRawPointer }
    private final class Bound: Sendable { let endpoints = Mutex<(String, String)?>(nil); let error = Mutex<String?>(nil) }

    let frontend: String
    let backend: String
    private let context: ContextPointer
    private let exited: DispatchSemaphore

    init(frontend frontendSpec: String, backend backendSpec: String) throws {
        guard let raw = zmq_ctx_new() else { throw PipelineBenchError("zmq_ctx_new failed") }
        let context = ContextPointer(raw: raw)
        let bound = Bound()
        let ready = DispatchSemaphore(value: 0)
        exited = spawn {
            func socket(_ type: Int32, _ spec: String) -> (UnsafeMutableRawPointer, String)? {
                guard let s = zmq_socket(context.raw, type) else { return nil }
                var linger: Int32 = 0, hwm: Int32 = 10_000
                _ = zmq_setsockopt(s, ZMQ_LINGER, &linger, 4)
                _ = zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, 4)
                _ = zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, 4)
                guard zmq_bind(s, spec) == 0 else { _ = zmq_close(s); return nil }
                var name = [CChar](repeating: 0, count: 256)
                var size = name.count
                _ = zmq_getsockopt(s, ZMQ_LAST_ENDPOINT, &name, &size)
                return (s, String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
            }
            guard let front = socket(ZMQ_ROUTER, frontendSpec) else {
                bound.error.withLock { $0 = "zmq_proxy frontend: \(String(cString: zmq_strerror(zmq_errno())))" }
                ready.signal(); return
            }
            guard let back = socket(ZMQ_DEALER, backendSpec) else {
                bound.error.withLock { $0 = "zmq_proxy backend: \(String(cString: zmq_strerror(zmq_errno())))" }
                _ = zmq_close(front.0); ready.signal(); return
            }
            bound.endpoints.withLock { $0 = (front.1, back.1) }
            ready.signal()
            _ = zmq_proxy(front.0, back.0, nil)  // returns -1/ETERM once the context is shut down
            _ = zmq_close(front.0)
            _ = zmq_close(back.0)
        }
        ready.wait()
        self.context = context
        guard let (f, b) = bound.endpoints.withLock({ $0 }) else {
            exited.wait()
            _ = zmq_ctx_term(raw)
            throw PipelineBenchError(bound.error.withLock { $0 } ?? "zmq_proxy did not start")
        }
        (frontend, backend) = (f, b)
    }

    /// Ends `zmq_proxy`, waits for its thread to close the sockets, and terminates the context.
    func stop() {
        _ = zmq_ctx_shutdown(context.raw)
        exited.wait()
        while zmq_ctx_term(context.raw) != 0 && zmq_errno() == EINTR {}
    }
}

/// The standalone ceiling: `threads` threads, each with its own session and plan at `batch`,
/// executing back to back as a saturated worker would (inputs are seeded random data).
enum StandaloneEngine {
    static func measure(
        tail: URL, threads: Int, batch: Int, warmup: Double, duration: Double, compute: ComputeContext
    ) throws -> Double {
        let clock = CompletionClock()
        let stop = Atomic<Bool>(false)
        let failure = Mutex<String?>(nil)
        let ready = DispatchSemaphore(value: 0)
        let threadsDone = (0..<threads).map { i in
            spawn {
                let plan: ExecutionPlan
                do {
                    plan = try InferenceSession(contentsOf: tail, compute: compute).plan(batch: batch)
                } catch {
                    failure.withLock { $0 = "\(error)" }
                    ready.signal(); return
                }
                var rng = SeededGenerator(seed: UInt64(i + 1))
                for (name, _) in plan.inputTypes {
                    if let buffer = plan.inputBuffer(name) { for j in buffer.indices { buffer[j] = rng.nextNormal() } }
                }
                ready.signal()
                while !stop.load(ordering: .relaxed) {
                    plan.execute()
                    clock.record(batch)
                }
            }
        }
        for _ in 0..<threads { ready.wait() }
        Thread.sleep(forTimeInterval: warmup)
        let start = clock.sampleAfterBurst()
        Thread.sleep(forTimeInterval: duration)
        let end = clock.sampleAfterBurst()
        stop.store(true, ordering: .relaxed)
        threadsDone.forEach { $0.wait() }
        if let message = failure.withLock({ $0 }) { throw PipelineBenchError("--tail: \(message)") }
        return CompletionClock.rate(from: start, to: end)
    }
}

/// Runs `body` on a new thread; the semaphore is signalled when it returns.
func spawn(_ body: @escaping @Sendable () -> Void) -> DispatchSemaphore {
    let done = DispatchSemaphore(value: 0)
    let thread = Thread {
        body()
        done.signal()
    }
    thread.stackSize = 8 << 20
    thread.start()
    return done
}

/// A client thread's failure, on standard error (the run goes on; its counts show the loss).
func reportError(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}
