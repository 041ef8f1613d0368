import Foundation

/// Runs blocking work (loading models, waiting for a loop thread to end) on a dedicated thread
/// and suspends the calling task until it is done, so no thread of Swift's cooperative pool is
/// ever blocked (as swift-kafka-client keeps its poll loop off the pool).
public enum ThreadCall {
    /// `body`'s result, computed on a new thread named `name`.
    public static func run<T: Sendable>(_ name: String, _ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            spawn(name) { continuation.resume(with: Result { try body() }) }
        }
    }

    /// `body`'s result, computed on a new thread named `name` (for work that cannot fail).
    public static func blocking<T: Sendable>(_ name: String, _ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            spawn(name) { continuation.resume(returning: body()) }
        }
    }

    private static func spawn(_ name: String, _ body: @escaping @Sendable () -> Void) {
        let thread = Thread(block: body)
        thread.name = name
        thread.start()
    }
}
