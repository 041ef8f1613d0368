import BottleFitLifecycle
import Testing

/// For suites whose tests block a thread: they start processes and wait for them, read pipes, poll
/// sockets, sleep. Swift Testing runs every test on Swift's cooperative pool, one thread per CPU;
/// two such tests were enough to hold both threads of a 2-core machine for minutes while the
/// hundreds of quick tests waited behind them. Under this trait each test runs on a thread of a
/// `ThreadExecutor` instead (child tasks too), and blocking costs only that thread. At most three
/// such tests run at once (the process tests were tuned with two), so fleets of processes do not
/// all start together on two cores.
public struct BlockingTrait: TestTrait, SuiteTrait, TestScoping {
    static let executor = ThreadExecutor(name: "bf-test", maxThreads: 3)

    public var isRecursive: Bool { true }

    public func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        // The suite's own scope only waits for its tests; each test (case) gets a thread.
        guard testCase != nil else { return try await function() }
        try await withTaskExecutorPreference(Self.executor) { try await function() }
    }
}

extension Trait where Self == BlockingTrait {
    /// Runs the suite's (or the test's) tests on threads of their own: `@Suite(.blocking)`.
    public static var blocking: Self { BlockingTrait() }
}
