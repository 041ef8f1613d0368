import ArgumentParser
import BottleFitFleet
import BottleFitEngine
import BottleFitSystem

@main
struct BottleFitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bottlefit",
        abstract: "Split-computing inference: BottleFit heads on cameras, tails on shared edge workers.",
        discussion: """
            Models are ONNX files. Create the reference models with `bottlefit model create`, \
            run them with `bottlefit infer`, time them with `bottlefit bench`, and check the \
            engine against the ONNX backend test cases with `bottlefit check-onnx`.
            """,
        version: "bottlefit 0.1.0",
        subcommands: [
            InferCommand.self, BenchCommand.self, BenchDeviceCommand.self, CheckONNXCommand.self, ModelCommand.self, BrokerCommand.self,
            WorkerCommand.self, DeviceCommand.self, ControllerCommand.self, BenchPipelineCommand.self, VersionCommand.self, UpCommand.self,
            BenchTrainCommand.self, TrainCommand.self, EvalCommand.self, DatasetCommand.self, LoadgenCommand.self, KeysCommand.self,
        ]
    )
}

struct VersionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "version",
        abstract: "Print the tool's version and the versions of the C libraries it links.",
        discussion: "Example: bottlefit version"
    )

    func run() {
        print("bottlefit 0.1.0")
        print(LinkedLibraries.summary)
    }
}

/// Options shared by commands that run a model.
struct ThreadOptions: ParsableArguments {
    @Option(name: .role(CommonFlags.threads), help: "Engine threads (GEMMs, im2col, pooling, Winograd transforms).")
    var threads: Int = 1

    @Option(
        name: .long,
        help: ArgumentHelp(
            "GEMM for constant weights: auto (packed on CPUs with AVX-512, else mixed; the environment variable "
                + "BOTTLEFIT_GEMM=packed|openblas|mixed overrides auto), packed (weights packed once for the C microkernel: "
                + "AVX-512, AVX2 or portable build; a fully connected layer with a single row runs as OpenBLAS sgemv), openblas, or mixed (every convolution packed at batch 1; in larger "
                + "batches OpenBLAS, except pointwise convolutions that a squeeze-and-excitation scale is fused into, "
                + "small strided ones (direct rows) and pointwise ones with at most 24 input channels on maps of 256+ "
                + "pixels, which run packed; fully connected layers on OpenBLAS).",
            valueName: "kind"))
    var gemm: GEMMChoice = .auto

    enum GEMMChoice: String, ExpressibleByArgument, CaseIterable {
        case auto, packed, openblas, mixed
    }

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Instruction set of the C kernels: auto (the best this CPU runs: avx512, else avx2, else portable), avx512, "
                + "avx2 or portable (baseline SSE2/NEON). One this CPU lacks runs the portable build.",
            valueName: "set"))
    var kernels: KernelChoice = .auto

    enum KernelChoice: String, ExpressibleByArgument, CaseIterable {
        case auto, avx512, avx2, portable
    }

    func validate() throws {
        guard (1...256).contains(threads) else { throw ValidationError("--threads must be between 1 and 256") }
    }

    /// The GEMM asked for: nil (the best for this CPU) unless --gemm or BOTTLEFIT_GEMM names one.
    var chosenGEMM: ComputeContext.GEMM? {
        switch gemm {
        case .auto: ProcessInfo.processInfo.environment["BOTTLEFIT_GEMM"].flatMap(ComputeContext.GEMM.init(rawValue:))
        case .packed: .packed
        case .openblas: .openblas
        case .mixed: .mixed
        }
    }

    /// The compute context of this command's sessions. OpenBLAS is made single-threaded for the
    /// process first (the engine splits the work itself; `ComputeContext.useSingleThreadedOpenBLAS`).
    func makeComputeContext() -> ComputeContext {
        ComputeContext.useSingleThreadedOpenBLAS()
        let isa: KernelInstructionSet? =
            switch kernels {
            case .auto: nil
            case .avx512: .avx512
            case .avx2: .avx2
            case .portable: .portable
            }
        return ComputeContext(threads: threads, gemm: chosenGEMM, instructionSet: isa)
    }
}

/// Prints to standard error.
func printError(_ message: String) {
    var stderr = StandardError()
    print(message, to: &stderr)
}

struct StandardError: TextOutputStream {
    mutating func write(_ string: String) {
        FileHandle.standardError.write(Data(string.utf8))
    }
}

import Foundation

/// A failure while running a command: printed as "Error: …" without the usage text.
struct CommandError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
