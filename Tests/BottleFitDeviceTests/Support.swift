import BottleFitDevice
import BottleFitEngine
import BottleFitImaging
import BottleFitProtocol
import Foundation
import Synchronization
import ZeroMQ

/// Small real models written once per test process: a narrow BottleFit ResNet, its head, and
/// the shape of its bottleneck, computed from the graph.
struct TestModels: Sendable {
    let directory: URL
    let head: URL
    let full: URL
    let bottleneckShape: [Int]
    let classes = 10

    static let shared: TestModels = {
        // A fixed, tiny topology: if it cannot be built the whole suite is meaningless.
        let config = ResNetConfiguration(width: 4, classes: 10, imageSize: 64)
        let graph = ModelFactory.bottleFitResNet(bottleneck: 4, config)
        let (head, _) = try! ModelSplitter.split(graph, at: ModelFactory.bottleneckName)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bottlefit-device-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let headURL = dir.appendingPathComponent("head.onnx")
        let fullURL = dir.appendingPathComponent("full.onnx")
        try! ONNXExporter.write(head, to: headURL)
        try! ONNXExporter.write(graph, to: fullURL)
        let plan = try! InferenceSession(graph: head).plan(batch: 1)
        let shape = Array(plan.outputTypes[0].type.shape.dropFirst())
        return TestModels(directory: dir, head: headURL, full: fullURL, bottleneckShape: shape)
    }()
}

/// Synthetic frames with a label (frame number mod 10), so accuracy can be checked per path.
struct LabelledFrames: FrameSource, Sendable {
    var inner: SyntheticFrameSource

    init(count: Int, seed: UInt64 = 1, jpegQuality: Int? = nil) {
        inner = try! SyntheticFrameSource(width: 80, height: 64, seed: seed, count: count, jpegQuality: jpegQuality)
    }

    mutating func next() -> Frame? {
        guard let f = inner.next() else { return nil }
        return Frame(sequence: f.sequence, id: f.id, image: f.image, jpeg: f.jpeg, label: f.sequence % 10)
    }
}

/// A broker and worker in one thread: a ROUTER on an inproc endpoint that answers each FRAME
/// as told, and every HEARTBEAT with one (unless silent). Everything it receives is recorded.
final class FakeEdge: Sendable {
    enum Behaviour: Sendable {
        /// RESULT naming the frame's label as the top class (class 0 if it has none).
        case answer
        /// ERROR `code` (with `ra` when given) for the first `count` frames, then `answer`.
        case reject(ErrorCode, retryAfter: UInt64?, count: Int)
        /// A RESULT that names the frame but lacks required fields (does not decode).
        case malformed
        /// Reads everything, answers nothing.
        case silent
        /// Answers each frame after this many ms (late, when beyond the SLO).
        case delayed(milliseconds: Int)
    }

    struct Record: Sendable {
        var frames: [FrameMessage] = []
        /// When each of `frames` arrived, Unix ms.
        var frameArrivals: [UInt64] = []
        var heartbeats = 0
        /// Latency reports carried by the heartbeats.
        var reports: [LatencyReport] = []
        var other = 0
    }

    let endpoint: String
    private let behaviour: Behaviour
    private let stopFlag = Mutex(false)
    private let record = Mutex(Record())
    private let done = DispatchSemaphore(value: 0)

    /// Binds before returning, so a camera started afterwards connects at once.
    init(context: ZMQContext, behaviour: Behaviour) throws {
        endpoint = "inproc://fake-edge-\(UUID().uuidString)"
        self.behaviour = behaviour
        let bound = DispatchSemaphore(value: 0)
        let failure = Mutex<String?>(nil)
        let endpoint = self.endpoint
        let thread = Thread { [self] in
            defer { done.signal() }
            do {
                let router = try ZMQSocket(context, type: .router, linger: 0)
                try router.bind(endpoint)
                bound.signal()
                try serve(router)
                try router.close()
            } catch {
                failure.withLock { $0 = "\(error)" }
                bound.signal()
            }
        }
        thread.start()
        bound.wait()
        if let message = failure.withLock({ $0 }) { throw CameraError.transport(message) }
    }

    var received: Record { record.withLock { $0 } }

    func stop() {
        stopFlag.withLock { $0 = true }
        done.wait()
        done.signal()
    }

    private func serve(_ router: ZMQSocket) throws {
        let poller = ZMQPoller()
        try poller.add(router)
        var delayed: [(due: ContinuousClock.Instant, route: [UInt8], reply: [UInt8])] = []
        var rejectLeft: Int = if case .reject(_, _, let n) = behaviour { n } else { 0 }
        let clock = ContinuousClock()
        // Only a bound for a fake whose test never stops it (every test stops it in a `defer`):
        // generous, since a camera may take tens of seconds to load its models and send its
        // first frame in a debug build under QEMU (the aarch64 check), where 20 s was too short.
        let giveUp = clock.now + .seconds(600)
        while !stopFlag.withLock({ $0 }) && clock.now < giveUp {
            _ = try poller.poll(timeout: .milliseconds(5))
            let now = clock.now
            while let first = delayed.first, first.due <= now {
                delayed.removeFirst()
                _ = try router.trySend([first.route, [], first.reply])
            }
            for _ in 0..<64 {
                guard let frames = try router.tryReceive(), frames.count == 3 else { break }
                let route = frames[0]
                guard let message = try? Message.decode(frames[2]) else { continue }
                switch message {
                case .heartbeat(let heartbeat):
                    record.withLock {
                        $0.heartbeats += 1
                        if let report = heartbeat.latencyReport { $0.reports.append(report) }
                    }
                    if case .silent = behaviour { continue }
                    _ = try router.trySend([route, [], try HeartbeatMessage().encoded()])
                case .frame(let frame):
                    let arrival = UInt64(Date().timeIntervalSince1970 * 1000)
                    record.withLock {
                        $0.frames.append(frame)
                        $0.frameArrivals.append(arrival)
                    }
                    let result = try ResultMessage(
                        cameraID: frame.cameraID, sequence: frame.sequence, classIndices: [frame.label ?? 0], scores: [1],
                        queuedMilliseconds: 0, computeMilliseconds: 0, batchSize: 1, workerID: "fake").encoded()
                    switch behaviour {
                    case .answer:
                        _ = try router.trySend([route, [], result])
                    case .reject(let code, let retryAfter, _) where rejectLeft > 0:
                        rejectLeft -= 1
                        let error = try ErrorMessage(sequence: frame.sequence, cameraID: frame.cameraID, code: code,
                                                     text: "fake", retryAfterMilliseconds: retryAfter).encoded()
                        _ = try router.trySend([route, [], error])
                    case .reject:
                        _ = try router.trySend([route, [], result])
                    case .malformed:
                        _ = try router.trySend([route, [], Self.truncatedResult(frame)])
                    case .silent:
                        break
                    case .delayed(let ms):
                        delayed.append((now + .milliseconds(ms), route, result))
                    }
                default:
                    record.withLock { $0.other += 1 }
                }
            }
        }
    }

    /// `{"v": 1, "t": "result", "c": <camera>, "s": <sequence>}`: readable by `MessageHeader.peek`,
    /// rejected by `Message.decode` (no "ki", "ks", ...). Camera ids here are under 32 bytes (fixstr).
    static func truncatedResult(_ frame: FrameMessage) -> [UInt8] {
        func str(_ s: String) -> [UInt8] { [0xa0 | UInt8(s.utf8.count)] + Array(s.utf8) }
        // One `+=` per part: a single chain of `+` is too much for Swift 6.2's type checker.
        var bytes: [UInt8] = [0x84]
        bytes += str("v")
        bytes += [0x01]
        bytes += str("t")
        bytes += str("result")
        bytes += str("c")
        bytes += str(frame.cameraID)
        bytes += str("s")
        bytes += [0xcf]
        let sequence = frame.sequence
        bytes += (0..<8).reversed().map { (shift: Int) -> UInt8 in UInt8(truncatingIfNeeded: sequence >> (8 * UInt64(shift))) }
        return bytes
    }
}
