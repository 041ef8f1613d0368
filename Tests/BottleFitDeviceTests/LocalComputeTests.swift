@testable import BottleFitDevice
import BottleFitImaging
import Foundation
import Testing
import ZeroMQ
import BottleFitTestSupport

/// The whole model on its own thread: jobs finish in order, each wakes the loop's poller, and
/// stopping hands back the jobs that never ran.
@Suite(.blocking) struct LocalComputeTests {
    let models = TestModels.shared

    @Test func jobsFinishInOrderAndWakeThePoller() throws {
        let context = try ZMQContext()
        let cameraModels = try CameraModels(configuration: CameraConfiguration(
            cameraID: "c", mode: .local, modelName: "m", fullModel: models.full))
        let local = try LocalCompute(models: cameraModels, clock: SystemCameraClock(), context: context)
        let poller = ZMQPoller()
        _ = try poller.add(local.wakeSocket)
        var source = LabelledFrames(count: 6)
        for id in 0..<6 {
            guard let frame = source.next() else { Issue.record("the source ended"); return }
            local.submit(.init(id: UInt64(id), image: frame.image))
        }
        var done: [LocalCompute.Finished] = []
        // Bounded: at most 600 polls of 100 ms (a busy machine), usually a few.
        for _ in 0..<600 where done.count < 6 {
            _ = try poller.poll(timeout: .milliseconds(100))
            done += local.collect()
        }
        #expect(done.map(\.id) == Array(0..<6))
        #expect(done.allSatisfy { $0.finishedAt >= $0.startedAt && (0..<10).contains($0.top1) })
        #expect(local.outstanding == 0)
        #expect(local.stop().isEmpty)
    }

    @Test func stopReturnsTheJobsThatNeverRan() throws {
        let context = try ZMQContext()
        let cameraModels = try CameraModels(configuration: CameraConfiguration(
            cameraID: "c", mode: .local, modelName: "m", fullModel: models.full))
        let local = try LocalCompute(models: cameraModels, clock: SystemCameraClock(), context: context)
        var source = LabelledFrames(count: 200)
        for id in 0..<200 {
            guard let frame = source.next() else { Issue.record("the source ended"); return }
            local.submit(.init(id: UInt64(id), image: frame.image))
        }
        let abandoned = local.stop()
        let finished = local.collect()
        // Every job is either finished or handed back, never both, never lost.
        #expect(Set(abandoned).isDisjoint(with: finished.map(\.id)))
        #expect(abandoned.count + finished.count == 200)
        #expect(local.outstanding == 0)
    }
}
