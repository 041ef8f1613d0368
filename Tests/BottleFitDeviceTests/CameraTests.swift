import BottleFitDevice
import BottleFitImaging
import BottleFitProtocol
import Foundation
import Logging
import Testing
import ZeroMQ
import BottleFitTestSupport

/// The camera runtime against a fake broker+worker on inproc://, with small real models.
/// Serialized: the scenarios depend on timing, and the machine has two cores.
@Suite(.serialized, .blocking) struct CameraTests {
    let models = TestModels.shared
    /// Quiet: the scenarios provoke the warnings (silent edge) on purpose.
    static let logger = Logger(label: "bottlefit.device.test", factory: { _ in SwiftLogNoOpLogHandler() })

    func configuration(
        _ mode: CameraMode = .split, broker: String?, id: String = "cam-test", local: Bool = true,
        fps: Double? = nil, slo: UInt64 = 500, heartbeat: UInt64 = 1000, liveness: UInt64 = 3
    ) -> CameraConfiguration {
        CameraConfiguration(
            cameraID: id, mode: mode, brokerEndpoint: broker, modelName: "tiny-bottlefit",
            headModel: models.head, fullModel: local ? models.full : nil,
            framesPerSecond: fps, sloMilliseconds: slo, maxInFlight: 4,
            heartbeatIntervalMilliseconds: heartbeat, liveness: liveness, pollTimeoutMilliseconds: 10)
    }

    /// Runs a camera over `frames` frames and returns its summary, checking the invariant.
    func run(_ configuration: CameraConfiguration, frames: Int, context: ZMQContext, jpeg: Int? = nil) throws -> CameraSummary {
        let camera = Camera(configuration: configuration, source: LabelledFrames(count: frames, jpegQuality: jpeg), context: context, logger: Self.logger)
        try camera.start()
        let summary = try #require(camera.wait())
        let a = summary.accounting
        #expect(a.offered == frames)
        #expect(a.inFlight == 0)
        #expect(a.offered == a.completedEdge + a.completedLocal + a.droppedTotal)
        return summary
    }

    @Test func splitFramesCompleteOnTheEdge() throws {
        let context = try ZMQContext()
        let edge = try FakeEdge(context: context, behaviour: .answer)
        defer { edge.stop() }
        // An SLO of 5 s: the camera reads an answer only after it has computed the next frame's
        // head, and where that takes much of a 500 ms budget (a debug build under QEMU) the
        // answers look late to it, the edge congested, and some frames go local.
        let slo: UInt64 = 5000
        let a = try run(configuration(broker: edge.endpoint, slo: slo), frames: 12, context: context).accounting
        #expect(a.completedEdge == 12)
        #expect(a.sent == 12)
        #expect(a.accuracy(.edge) == 1)  // the fake answers the label
        #expect(a.latency[.edge]?.count == 12)
        let received = edge.received
        let frames = received.frames
        #expect(frames.count == 12)
        #expect(frames.map(\.sequence) == Array(0..<12))
        for (frame, arrival) in zip(frames, received.frameArrivals) {
            guard case .bottleneck(let q) = frame.payload else {
                Issue.record("split mode sent \(frame.payload.kind)")
                continue
            }
            #expect(q.shape == models.bottleneckShape)
            #expect(q.data.count == models.bottleneckShape.reduce(1, *))
            // "dl" is the frame's edge deadline: the deadline less the time to compute it locally,
            // never less than half the budget; and never less than half the budget from when it
            // was sent, which is later than "sa" (when it was taken) by the head's time, and
            // before it arrived here.
            #expect(frame.deadline >= frame.sentAt + slo / 2)
            #expect(frame.deadline <= max(frame.sentAt + slo, arrival + slo / 2), "sa \(frame.sentAt), arrived \(arrival)")
            #expect(frame.cameraID == "cam-test")
        }
    }

    @Test func idleCameraHeartbeatsAndStaysOnTheEdge() throws {
        let context = try ZMQContext()
        let edge = try FakeEdge(context: context, behaviour: .answer)
        defer { edge.stop() }
        // 4 frames at 0.5 fps (6 s) with a 100 ms heartbeat and a liveness of 12: without
        // heartbeats and their answers the broker would count as silent after 1.2 s, well
        // inside each 2 s gap between frames, and frames would go local. (A liveness of 12, not
        // 3: on a loaded machine, with other tests' processes beside this one, an answer can be
        // 400 ms late, but not 1.2 s.)
        let a = try run(configuration(broker: edge.endpoint, fps: 0.5, heartbeat: 100, liveness: 12), frames: 4, context: context).accounting
        #expect(a.completedEdge == 4)
        #expect(edge.received.heartbeats >= 10)
    }

    @Test func offloadSendsTheJPEG() throws {
        let context = try ZMQContext()
        let edge = try FakeEdge(context: context, behaviour: .answer)
        defer { edge.stop() }
        let a = try run(configuration(.offload, broker: edge.endpoint, local: false), frames: 5, context: context, jpeg: 80).accounting
        #expect(a.completedEdge == 5)
        let kinds = edge.received.frames.map(\.payload.kind)
        #expect(kinds == Array(repeating: "jpeg", count: 5))
        if case .jpeg(let bytes) = edge.received.frames.first?.payload {
            #expect((try? JPEGCodec.readHeader(bytes)) == JPEGCodec.Header(width: 80, height: 64, channels: 3))
        }
    }

    @Test func localModeNeverUsesTheEdge() throws {
        let context = try ZMQContext()
        let a = try run(configuration(.local, broker: nil), frames: 6, context: context).accounting
        #expect(a.completedLocal == 6)
        #expect(a.sent == 0)
        #expect(a.labelled[.local] == 6)
    }

    @Test func skippedInputsAreOfferedAndDropped() throws {
        let context = try ZMQContext()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("camera-frames-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        var synthetic = LabelledFrames(count: 2)
        for name in ["a.jpg", "c.jpg"] {
            let frame = synthetic.next()
            let image = try #require(frame).image
            try Data(JPEGCodec.encode(image, quality: 80)).write(to: dir.appendingPathComponent(name))
        }
        try Data([0xff, 0xd8, 0xff, 0x00, 0x01]).write(to: dir.appendingPathComponent("b.jpg"))  // corrupt
        let source = try DirectoryFrameSource(directory: dir.path)
        let camera = Camera(configuration: configuration(.local, broker: nil), source: source, context: context, logger: Self.logger)
        try camera.start()
        let a = try #require(camera.wait()).accounting
        #expect(a.offered == 3)
        #expect(a.completedLocal == 2)
        #expect(a.dropped == [.sourceSkipped: 1])
        #expect(a.isSettled)
    }

    @Test func busyFallsBackLocallyThenReturnsToSplit() throws {
        let context = try ZMQContext()
        let edge = try FakeEdge(context: context, behaviour: .reject(.busy, retryAfter: 100, count: 2))
        defer { edge.stop() }
        // 200 frames at 100 fps: 2 s, so the BUSY answers reach the camera long before its last
        // frame even on a machine so busy that they take a second to arrive.
        let a = try run(configuration(broker: edge.endpoint, fps: 100), frames: 200, context: context).accounting
        #expect(a.fellBack >= 1)  // the BUSY frames were computed locally, in time
        #expect(a.completedLocal >= 2)
        #expect(a.completedEdge >= 1)  // and the camera came back to the edge
        #expect(a.droppedTotal == 0)
        // It sent a smaller share for a while (no pause, no back-off): not every frame went to the edge.
        #expect(a.sent < 200)
        #expect(edge.received.frames.count == a.sent)
    }

    @Test func busyWithoutLocalModelDropsWithReason() throws {
        let context = try ZMQContext()
        let edge = try FakeEdge(context: context, behaviour: .reject(.busy, retryAfter: 10_000, count: 1000))
        defer { edge.stop() }
        let a = try run(configuration(broker: edge.endpoint, local: false, fps: 200), frames: 10, context: context).accounting
        #expect(a.completedEdge == 0 && a.completedLocal == 0)
        // Without a local model every frame is offered (the broker's fairness sheds the excess;
        // holding frames back would only leave the edge idler), and each BUSY is a drop.
        #expect(a.sent == 10)
        #expect(a.dropped == [.busy: 10])
    }

    @Test func workerLostFramesAreComputedLocallyWithoutBackoff() throws {
        let context = try ZMQContext()
        let edge = try FakeEdge(context: context, behaviour: .reject(.workerLost, retryAfter: nil, count: 1000))
        defer { edge.stop() }
        let a = try run(configuration(broker: edge.endpoint, fps: 100), frames: 8, context: context).accounting
        #expect(a.completedLocal == 8)
        #expect(a.fellBack == 8)
        #expect(a.sent == 8)  // a lost worker says nothing bad about the broker: no back-off
    }

    @Test func expiredWithoutLocalModelKeepsOffering() throws {
        let context = try ZMQContext()
        let edge = try FakeEdge(context: context, behaviour: .reject(.expired, retryAfter: nil, count: 1000))
        defer { edge.stop() }
        let a = try run(configuration(broker: edge.endpoint, local: false, fps: 200), frames: 10, context: context).accounting
        #expect(a.completedEdge == 0 && a.completedLocal == 0)
        #expect(a.dropped == [.expired: 10], "dropped: \(a.dropped)")
        #expect(a.sent == 10)
    }

    @Test func undecodableReplyNamingAFrameFallsBack() throws {
        let context = try ZMQContext()
        let edge = try FakeEdge(context: context, behaviour: .malformed)
        defer { edge.stop() }
        let a = try run(configuration(broker: edge.endpoint, fps: 100), frames: 4, context: context).accounting
        #expect(a.completedEdge == 0)
        #expect(a.completedLocal + (a.dropped[.decodeError] ?? 0) == 4)
        #expect(a.fellBack >= 1)
        #expect(a.undecodableMessages == 0)  // each was attributed to its frame
    }

    @Test func silentEdgeTimesOutThenGoesLocal() throws {
        let context = try ZMQContext()
        let edge = try FakeEdge(context: context, behaviour: .silent)
        defer { edge.stop() }
        // Heartbeat 50 ms: silence is declared after 150 ms; SLO 100 ms.
        let a = try run(configuration(broker: edge.endpoint, fps: 100, slo: 100, heartbeat: 50), frames: 40, context: context).accounting
        #expect(a.completedEdge == 0)
        #expect(a.completedLocal + a.droppedTotal == 40)
        // The first frames were sent and timed out: computed locally, or dropped when a loaded
        // machine left no time to compute them before their deadline.
        #expect(a.sent >= 1)
        #expect(a.fellBack + a.droppedTotal >= 1)
        #expect(a.completedLocal >= 30)
        // Once dead (silent for 150 ms), frames stop going to the edge.
        #expect(a.sent <= 20)
    }

    @Test func silentEdgeWithoutLocalModelDropsEveryFrame() throws {
        let context = try ZMQContext()
        let edge = try FakeEdge(context: context, behaviour: .silent)
        defer { edge.stop() }
        let a = try run(configuration(broker: edge.endpoint, local: false, fps: 100, slo: 60, heartbeat: 30), frames: 20, context: context).accounting
        #expect(a.completedEdge == 0 && a.completedLocal == 0)
        #expect(a.droppedTotal == 20)
        #expect((a.dropped[.timeout] ?? 0) >= 1)
        #expect((a.dropped[.timeout] ?? 0) + (a.dropped[.edgeDownNoLocal] ?? 0) == 20)
    }

    @Test func lateRepliesAreIgnored() throws {
        let context = try ZMQContext()
        // Every answer comes 150 ms after the frame, past its 60 ms deadline.
        let edge = try FakeEdge(context: context, behaviour: .delayed(milliseconds: 150))
        defer { edge.stop() }
        // 8 frames at 20 fps: the camera is still running when the late answers arrive. Offload
        // mode (the source's JPEG as it is): in split mode the loop thread runs the head for the
        // next frame between its timeout checks, and where that takes over 120 ms (a debug
        // build under QEMU) a late answer is read before its frame's timeout is noticed, and
        // counts as a late completion at the edge.
        let a = try run(configuration(.offload, broker: edge.endpoint, fps: 20, slo: 60), frames: 8, context: context, jpeg: 80).accounting
        #expect(a.completedEdge == 0)
        #expect(a.ignoredReplies >= 1)
        #expect(a.completedLocal >= 1)
        // A frame that timed out is computed locally, late if it must be, never dropped for its
        // timeout. The one bound is the local backlog (`overloaded`: more waiting than twice the
        // SLO), reached where the whole model takes most of the 60 ms SLO (QEMU).
        #expect(a.completedLocal + (a.dropped[.overloaded] ?? 0) == 8, "dropped: \(a.dropped)")
        #expect(a.dropped.keys.allSatisfy { $0 == .overloaded }, "dropped: \(a.dropped)")
    }

    @Test func noBrokerComputesLocally() throws {
        let context = try ZMQContext()
        // Nobody binds this endpoint: with ZMQ_IMMEDIATE the send fails at once. (Not inproc://,
        // where a connect before the bind already counts as a peer.)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("nobody-\(UUID().uuidString)").path
        let a = try run(configuration(broker: "ipc://\(path)"), frames: 5, context: context).accounting
        #expect(a.completedLocal == 5)
        #expect(a.sent == 0)
        #expect(a.fellBack >= 1)
    }

    @Test func directiveSendsTheCameraLocal() throws {
        let context = try ZMQContext()
        let edge = try FakeEdge(context: context, behaviour: .answer)
        defer { edge.stop() }
        let publisher = try ZMQSocket(context, type: .pub, linger: 0)
        let directiveEndpoint = "inproc://directives-\(UUID().uuidString)"
        try publisher.bind(directiveEndpoint)
        var config = configuration(broker: edge.endpoint, fps: 100)
        config.directiveEndpoint = directiveEndpoint
        let camera = Camera(configuration: config, source: LabelledFrames(count: 40), context: context, logger: Self.logger)
        try camera.start()
        // Re-published, as a controller does, until it has certainly reached the subscriber.
        let directive = try DirectiveMessage(
            sequence: 1, target: .cameras(["cam-test"]), mode: .local, reason: "test",
            validUntil: UInt64(Date().timeIntervalSince1970 * 1000) + 60_000).encoded()
        for _ in 0..<10 {
            _ = try publisher.trySend([Array("directive".utf8), directive])
            Thread.sleep(forTimeInterval: 0.02)
        }
        let summary = try #require(camera.wait())
        let a = summary.accounting
        #expect(a.directivesObeyed == 1)
        #expect(a.completedLocal >= 10)
        #expect(a.offered == a.completedEdge + a.completedLocal + a.droppedTotal)
    }

    @Test func stopDrainsAnEndlessSource() throws {
        let context = try ZMQContext()
        let edge = try FakeEdge(context: context, behaviour: .answer)
        defer { edge.stop() }
        let source = try SyntheticFrameSource(width: 64, height: 64, seed: 3)  // never ends
        let camera = Camera(configuration: configuration(broker: edge.endpoint, fps: 200), source: source, context: context, logger: Self.logger)
        try camera.start()
        Thread.sleep(forTimeInterval: 0.15)
        let summary = try #require(camera.stop())
        let a = summary.accounting
        #expect(a.offered > 0)
        #expect(a.isSettled)
        #expect(a.completedEdge + a.completedLocal + a.droppedTotal == a.offered)
        // A second stop returns the same summary at once.
        #expect(camera.stop()?.accounting == a)
    }

    @Test func invalidConfigurationFailsAtStart() throws {
        let context = try ZMQContext()
        let camera = Camera(configuration: configuration(broker: nil), source: LabelledFrames(count: 1), context: context, logger: Self.logger)
        #expect(throws: CameraError.self) { try camera.start() }
    }
}
