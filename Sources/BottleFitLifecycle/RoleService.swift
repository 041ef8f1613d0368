import Logging
import ServiceLifecycle
import Synchronization

/// Runs a `ThreadedRole` as a swift-service-lifecycle `Service`: the one way every role (broker,
/// tail worker, controller, camera) starts, drains and stops.
///
/// `run()` waits for its prerequisite (the metrics endpoint bound), starts the role on a thread of
/// its own, then waits for the role's loop to end, again on a thread of its own, so Swift's
/// cooperative pool never blocks. Graceful shutdown (SIGTERM or SIGINT through the `ServiceGroup`),
/// cancellation of the group, or the end of `timeLimit` asks the role to drain (`requestStop`),
/// once; `run()` returns when the role has drained and closed its sockets. A role that ends on its
/// own (a camera whose source ran out) ends `run()` too: give the service
/// `successTerminationBehavior: .gracefullyShutdownGroup` so the rest of the group follows.
public struct RoleService<Role: ThreadedRole>: Service, CustomStringConvertible {
    /// What the service tells its process on the way: health for /healthz, the "up" log line.
    public struct Events: Sendable {
        /// The role serves (`startServing` returned and no stop was asked for meanwhile).
        public var serving: @Sendable () -> Void
        /// The role was asked to drain (first time only).
        public var stopping: @Sendable () -> Void

        public init(serving: @escaping @Sendable () -> Void = {}, stopping: @escaping @Sendable () -> Void = {}) {
            self.serving = serving
            self.stopping = stopping
        }
    }

    /// The role's name in errors and thread names: broker, worker, controller, device.
    public let name: String
    public let role: Role
    /// Drain after this long serving (`bottlefit device --duration`); nil: until asked.
    public var timeLimit: Duration?
    /// Awaited before the role starts; its failure means the role never starts.
    public var prerequisite: ReadinessSignal?
    public var events: Events

    public init(name: String, role: Role, timeLimit: Duration? = nil, prerequisite: ReadinessSignal? = nil, events: Events = Events()) {
        self.name = name
        self.role = role
        self.timeLimit = timeLimit
        self.prerequisite = prerequisite
        self.events = events
    }

    public var description: String { name }

    public func run() async throws {
        try await prerequisite?.wait()
        let (role, name, events) = (self.role, self.name, self.events)
        let stop = StopRequest()
        // Whether the role was asked to drain; the events fire under this lock, so a stop that
        // races the end of start-up never reads "serving" after "stopping".
        let stopping = DrainFlag()
        stop.attach {
            stopping.lock.withLock { asked in
                asked = true
                events.stopping()
            }
            role.requestStop()
        }
        try await withTaskCancellationOrGracefulShutdownHandler {
            do {
                try await ThreadCall.run("bf-\(name)-start") { try role.startServing() }
            } catch {
                throw RoleStartError(role: name, underlying: error)
            }
            stopping.lock.withLock { asked in if !asked { events.serving() } }
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await ThreadCall.blocking("bf-\(name)-wait") { role.waitForStop() } }
                if let timeLimit {
                    group.addTask {
                        // Cancelled (and so ended early) once the role has stopped.
                        if (try? await Task.sleep(for: timeLimit)) != nil { stop.request("time limit") }
                    }
                }
                await group.next()
                group.cancelAll()
            }
        } onCancelOrGracefulShutdown: {
            stop.request("shutdown")
        }
    }
}

/// A role that could not start: "broker: cannot bind ...".
public struct RoleStartError: Error, CustomStringConvertible {
    public var role: String
    public var underlying: any Error
    public var description: String { "\(role): \(underlying)" }
}

/// Whether a role was asked to drain, shared by `RoleService`'s handlers (a class: escaping
/// closures cannot capture a `Mutex` itself).
private final class DrainFlag: Sendable {
    let lock = Mutex(false)
}
