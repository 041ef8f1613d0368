import Foundation
import Testing
import BottleFitTestSupport

/// `scripts/check-deploy`: the Kubernetes manifests, their CURVE Secrets and the Containerfile are
/// checked offline (kubernetes-validate's bundled schemas, `bottlefit SUB --help`, `up --dry-run`,
/// apt-cache), and a broken manifest is caught.
@Suite(.blocking) struct DeployFilesTests {
    struct Result {
        var status: Int32
        var output: String
    }

    func checkDeploy(_ arguments: [String]) throws -> Result {
        let p = Process()
        p.executableURL = CLITests.root.appendingPathComponent("scripts/check-deploy")
        p.arguments = ["--binary", UpTests.binary] + arguments
        p.currentDirectoryURL = CLITests.root
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Result(status: p.terminationStatus, output: String(decoding: data, as: UTF8.self))
    }

    @Test func theShippedDeploymentFilesPass() throws {
        let r = try checkDeploy([])
        #expect(r.status == 0, "\(r.output)")
        #expect(r.output.contains("kubernetes-validate --strict -k 1.31.0"))
        #expect(r.output.contains("kubernetes-validate --strict -k 1.37.0"))
        #expect(r.output.contains("container flags exist in their subcommand's --help"))
        #expect(r.output.contains("passes `bottlefit up --dry-run`"))
        #expect(r.output.contains("check-deploy: 0 failed"), "\(r.output)")
    }

    /// A field Kubernetes does not know, a flag `bottlefit worker` does not have, and an autoscaler
    /// metric no adapter rule serves: each is a FAIL line naming it, and the status is 1.
    @Test func brokenManifestsAreCaught() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("deploy-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let source = CLITests.root.appendingPathComponent("deploy/kubernetes")
        for name in try FileManager.default.contentsOfDirectory(atPath: source.path) where name.hasSuffix(".yaml") {
            var text = try String(contentsOf: source.appendingPathComponent(name), encoding: .utf8)
            if name == "workers.yaml" {
                text = text.replacingOccurrences(of: "- --max-batch=$(WORKER_MAX_BATCH)", with: "- --max-batches=$(WORKER_MAX_BATCH)")
                text = text.replacingOccurrences(of: "metric: {name: bottlefit_broker_queue_time_p95_seconds}", with: "metric: {name: bottlefit_queue_depth}")
            }
            if name == "controller.yaml" {
                text = text.replacingOccurrences(of: "strategy: {type: Recreate}", with: "strategy: {type: Recreate, surge: 1}")
            }
            try text.write(to: dir.appendingPathComponent(name), atomically: true, encoding: .utf8)
        }
        let r = try checkDeploy(["--manifests", dir.path])
        #expect(r.status == 1, "\(r.output)")
        #expect(r.output.contains("FAIL  kubernetes-validate --strict -k 1.31.0"), "\(r.output)")
        #expect(r.output.contains("surge"), "\(r.output)")
        #expect(r.output.contains("`bottlefit worker` has no option --max-batches"), "\(r.output)")
        #expect(r.output.contains("no Prometheus adapter rule serves bottlefit_queue_depth"), "\(r.output)")
    }
}
