import BottleFitFleet
import Foundation
import Testing

/// The embedded default fleet is a typed value; topology/local.yaml is the same fleet written out.
@Suite struct DefaultFleetTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test func theDefaultFleetPlansWhatTopologyLocalYamlPlans() throws {
        let models = Self.root.appendingPathComponent("models/demo")
        let trained = Self.root.appendingPathComponent(DefaultFleet.fashionMNISTModel)
        let typed = try TopologyFile(
            topology: DefaultFleet.topology(models: models, fashionMNIST: trained), path: "the default fleet", base: models,
            checkFiles: false)
        let file = try TopologyFile(contentsOf: Self.root.appendingPathComponent("topology/local.yaml").path, checkFiles: false)
        #expect(typed.roles.map(\.name) == file.roles.map(\.name))
        for (a, b) in zip(typed.roles, file.roles) { #expect(a == b, "\(a.name): \(a.arguments) vs \(b.arguments)") }
    }

    @Test func withoutTheTrainedModelOnlyTheResNetCamerasRun() throws {
        let models = URL(fileURLWithPath: "/nonexistent/models/demo")
        let file = try TopologyFile(
            topology: DefaultFleet.topology(models: models, fashionMNIST: nil), path: "the default fleet", base: models, checkFiles: false)
        #expect(file.roles.filter { $0.kind == .camera }.map(\.name) == ["camera-1", "camera-2"])
        guard case .worker(let w) = file.roles[1].launch else { Issue.record("\(file.roles[1])"); return }
        #expect(w.models.map(\.name) == ["bf12"] && w.models[0].tail == "/nonexistent/models/demo/tail.onnx")
    }

    /// A typed topology goes through the file's checks: here, a camera whose model no worker serves.
    @Test func aTypedTopologyIsCheckedLikeAFile() throws {
        var t = DefaultFleet.topology(models: URL(fileURLWithPath: "/m"), fashionMNIST: nil)
        t.cameras[0].model = "other"
        #expect(throws: TopologyError.self) { try TopologyFile(topology: t, path: "typed", base: URL(fileURLWithPath: "/m"), checkFiles: false) }
        do { _ = try TopologyFile(topology: t, path: "typed", base: URL(fileURLWithPath: "/m"), checkFiles: false) } catch {
            #expect(error.description == "typed: cameras[0]: camera-1 sends split frames of model other but no worker serves its tail", "\(error)")
        }
    }
}
