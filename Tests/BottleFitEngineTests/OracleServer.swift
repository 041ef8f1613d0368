import Foundation

/// The ONNX Runtime oracle as one long-lived Python process per test process
/// (`scripts/oracle/ort_server.py`): Python imports onnxruntime and numpy once, not once per
/// comparison, which costs under a second natively but 35–55 s under QEMU (scripts/check-arm64).
/// Started at the first request; requests from tests running in parallel take turns (one
/// lock); a server that died is started again at the next request. It ends when this process
/// does: its standard input closes.
final class OracleServer: @unchecked Sendable {  // every mutable field is used under `lock`
    static let shared = OracleServer()

    private let lock = NSLock()
    private var process: Process?
    private var requests: FileHandle?
    private var replies: FileHandle?
    private var pending = Data()
    /// The server's standard error, an unlinked file (a pipe nobody reads would fill and stop
    /// the server; a file with a name would stay behind): its end goes into the error when the
    /// server fails.
    private var errorLog: FileHandle?

    /// Runs MODEL on the array in INPUT (`.npy`) and writes its first output to OUTPUT.
    func run(model: String, input: String, output: String) throws {
        let request = ["model": model, "input": input, "output": output]
        var line = try JSONSerialization.data(withJSONObject: request)
        line.append(0x0A)
        lock.lock()
        defer { lock.unlock() }
        let replies = try started()
        if let problem = send(line, to: requests!) { throw failure("could not take a request (\(problem))") }
        guard let reply = readLine(replies) else { throw failure("ended without answering") }
        if reply == "ok" { return }
        throw TestSupport.ProcessFailure(description: "ONNX Runtime on \(model): \(reply)")
    }

    /// The running server's reply stream; starts the server (and waits for its "ready") if
    /// there is none or it has exited.
    private func started() throws -> FileHandle {
        if let process, process.isRunning, let replies { return replies }
        stop()
        let script = TestSupport.packageRoot.appendingPathComponent("scripts/oracle/ort_server.py").path
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("bottlefit-oracle-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: TestSupport.python)
        p.arguments = [script]
        let input = Pipe(), output = Pipe()
        p.standardInput = input
        p.standardOutput = output
        let errors = try FileHandle(forWritingTo: log)
        defer { try? errors.close() }  // the server has its own copy
        let errorsRead = try FileHandle(forReadingFrom: log)
        try FileManager.default.removeItem(at: log)
        p.standardError = errors
        errorLog = errorsRead
        try p.run()
        process = p
        requests = input.fileHandleForWriting
        replies = output.fileHandleForReading
        pending = Data()
        // Importing onnxruntime: under a second natively, most of a minute under QEMU.
        guard let ready = readLine(output.fileHandleForReading), ready == "ready" else {
            throw failure("did not start")
        }
        return output.fileHandleForReading
    }

    /// Writes DATA to the server's input; returns what went wrong, or nil. SIGPIPE is blocked on
    /// this thread meanwhile, so that a server that has died makes the write fail with EPIPE
    /// instead of killing the test process (the signal it raised is then taken back). The
    /// process's own signal dispositions, which the programs other tests start inherit, stay.
    private func send(_ data: Data, to handle: FileHandle) -> String? {
        var pipeSignal = sigset_t(), previous = sigset_t()
        sigemptyset(&pipeSignal)
        sigaddset(&pipeSignal, SIGPIPE)
        pthread_sigmask(SIG_BLOCK, &pipeSignal, &previous)
        defer {
            var pending = sigset_t()
            sigpending(&pending)
            if sigismember(&pending, SIGPIPE) == 1 && sigismember(&previous, SIGPIPE) == 0 {
                var now = timespec()
                _ = sigtimedwait(&pipeSignal, nil, &now)
            }
            pthread_sigmask(SIG_SETMASK, &previous, nil)
        }
        return data.withUnsafeBytes { bytes -> String? in
            var offset = 0
            while offset < bytes.count {
                let n = write(handle.fileDescriptor, bytes.baseAddress! + offset, bytes.count - offset)
                if n < 0 && errno == EINTR { continue }
                if n < 0 { return String(cString: strerror(errno)) }
                offset += n
            }
            return nil
        }
    }

    /// The next line from the server, or nil at the end of its output (or a read error).
    private func readLine(_ handle: FileHandle) -> String? {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            if let newline = pending.firstIndex(of: 0x0A) {
                let line = String(decoding: pending[pending.startIndex..<newline], as: UTF8.self)
                pending.removeSubrange(pending.startIndex...newline)
                return line
            }
            // read(2) blocks until there is output and returns what there is
            let count = buffer.withUnsafeMutableBytes { read(handle.fileDescriptor, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { return nil }
            pending.append(contentsOf: buffer[0..<count])
        }
    }

    /// The error for a server that failed: how it ended and the end of its standard error.
    /// The server is stopped, so that the next request starts a new one.
    private func failure(_ what: String) -> TestSupport.ProcessFailure {
        var status = "still running"
        if let process {
            try? requests?.close()  // at the end of its input the server exits
            process.waitUntilExit()
            status = process.terminationReason == .uncaughtSignal
                ? "killed by signal \(process.terminationStatus)" : "exited \(process.terminationStatus)"
        }
        try? errorLog?.seek(toOffset: 0)
        let log = String(decoding: (try? errorLog?.readToEnd()) ?? Data(), as: UTF8.self)
        stop()
        return TestSupport.ProcessFailure(description: "the ONNX Runtime oracle (\(TestSupport.python) scripts/oracle/ort_server.py) \(what), \(status): \(log.suffix(2000))")
    }

    private func stop() {
        try? requests?.close()
        try? replies?.close()
        try? errorLog?.close()
        process = nil
        requests = nil
        replies = nil
        errorLog = nil
        pending = Data()
    }
}
