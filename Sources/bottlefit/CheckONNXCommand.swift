import ArgumentParser
import BottleFitEngine
import Foundation

struct CheckONNXCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-onnx",
        abstract: "Run ONNX backend test cases and report pass, fail or skip for each.",
        discussion: """
            Each DIR is a case (model.onnx with test_data_set_*/input_*.pb and output_*.pb) or a \
            folder of cases. Outputs must match within |actual - expected| <= atol + rtol * |expected|. \
            A case is skipped when it needs an operator, attribute or data type the engine does not \
            support; its line names it. The last line is `N passed, N failed, N skipped`; the exit \
            status is 1 when any case failed.
            Example: bottlefit check-onnx /usr/share/libonnx-testdata/data/node
            """
    )

    @Argument(help: "Case folders, or folders of case folders.") var dirs: [String]
    @Option(help: "Relative tolerance.") var rtol: Double = 1e-3
    @Option(help: "Absolute tolerance.") var atol: Double = 1e-7
    @Flag(help: "Print only failed and skipped cases (and the summary).") var quiet = false

    func validate() throws {
        guard !dirs.isEmpty else { throw ValidationError("give at least one folder") }
        guard (0...1).contains(rtol), (0...1).contains(atol) else { throw ValidationError("--rtol and --atol must be numbers from 0 to 1") }
    }

    func run() throws {
        let cases = try ConformanceRunner.discover(dirs.map { URL(fileURLWithPath: $0) })
        let runner = ConformanceRunner(rtol: rtol, atol: atol)
        var passed = 0, failed = 0, skipped = 0
        for c in cases {
            let name = c.lastPathComponent
            switch runner.run(c) {
            case .passed:
                passed += 1
                if !quiet { print("PASS \(name)") }
            case .failed(let why):
                failed += 1
                print("FAIL \(name): \(why)")
            case .skipped(let why):
                skipped += 1
                print("SKIP \(name): \(why)")
            }
        }
        print("\(passed) passed, \(failed) failed, \(skipped) skipped")
        if failed > 0 { throw ExitCode(1) }
    }
}
