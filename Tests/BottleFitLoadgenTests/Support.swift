import BottleFitDevice
import Foundation
@testable import BottleFitLoadgen

/// The repository's root (tests read the shipped profiles).
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
let shippedProfiles = ProfileLibrary(directory: repositoryRoot.appendingPathComponent("profiles").path)

let testModel = ModelProfile(name: "m", headGMAC: 0.121, fullGMAC: 4.09, bottleneckShape: [12, 29, 29], inputSize: 224)
/// Head 2 ms, whole model 20 ms, JPEG 1 ms.
let testDevice = DeviceProfile(
    name: "test-board", effectiveGFLOPS: 409, jpegEncodeMilliseconds: 1, activeWatts: 5, idleWatts: 1, radioNanojoulesPerByte: 100,
    modelTimes: ["m": (head: 2, full: 20)])

func group(
    _ name: String = "g", cameras: Int = 4, rate: Double = 20, modes: [(mode: CameraMode, share: Double)] = [(.split, 1)],
    uplink: UplinkProfile = .ideal, slo: UInt64 = 250, maxInFlight: Int = 8, shape: LoadShape? = nil
) -> LoadgenPlan.Group {
    LoadgenPlan.Group(
        name: name, cameras: cameras, shape: shape ?? .steady(rate: rate), modes: modes, modelName: "m", model: testModel,
        device: testDevice, uplink: uplink, images: 2, sloMilliseconds: slo, maxInFlight: maxInFlight)
}

/// Runs `plan` against the in-process sink on a virtual clock: deterministic, and as fast as the CPU allows.
func runVirtual(_ plan: LoadgenPlan, stalled: Bool = false) throws -> (LoadgenReport, InstantSinkTransport) {
    let clock = VirtualClock()
    let sink = InstantSinkTransport(connections: plan.connections, virtualClock: clock)
    sink.stalled = stalled
    let engine = try LoadgenEngine(plan: plan, transport: sink, clock: clock)
    return (engine.run(), sink)
}
