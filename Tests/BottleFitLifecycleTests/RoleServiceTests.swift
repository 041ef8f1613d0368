import BottleFitLifecycle
import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import Testing
import BottleFitTestSupport

/// A role with a real loop thread: it serves until asked to stop (or for `turns` turns), and records
/// what happened in order.
final class LoopRole: ThreadedRole {
    let journal: Journal
    let failure: (any Error)?
    let turns: Int?
    private let stopFlag = Atomic<Bool>(false)
    private let done = DispatchSemaphore(value: 0)
    private let started = Atomic<Bool>(false)
    let stopRequests = Atomic<Int>(0)
    /// Whether the loop saw the stop on its first turn.
    let stoppedAtOnce = Atomic<Bool>(false)

    /// When set, `startServing` signals `inStart` and blocks until `startGate` is signalled (a slow model load).
    let startGate: DispatchSemaphore?
    let inStart = DispatchSemaphore(value: 0)

    init(journal: Journal, failure: (any Error)? = nil, turns: Int? = nil, startGate: DispatchSemaphore? = nil) {
        self.journal = journal
        self.failure = failure
        self.turns = turns
        self.startGate = startGate
    }

    func startServing() throws {
        journal.note("start")
        if let startGate {
            inStart.signal()
            startGate.wait()
        }
        if let failure { throw failure }
        started.store(true, ordering: .releasing)
        Thread.detachNewThread { [self] in
            var turn = 0
            while !stopFlag.load(ordering: .acquiring) {
                if let turns, turn >= turns { break }
                turn += 1
                usleep(1000)
            }
            if turn == 0 { stoppedAtOnce.store(true, ordering: .releasing) }
            journal.note("drained")
            done.signal()
        }
    }

    func requestStop() {
        stopRequests.add(1, ordering: .relaxed)
        journal.note("stop requested")
        stopFlag.store(true, ordering: .releasing)
    }

    func waitForStop() {
        guard started.load(ordering: .acquiring) else { return }
        done.wait()
        done.signal()
    }
}

/// What happened, in order, across threads.
final class Journal: Sendable {
    private let entries = Mutex<[String]>([])
    func note(_ entry: String) { entries.withLock { $0.append(entry) } }
    var all: [String] { entries.withLock { $0 } }
}

/// A service that runs until graceful shutdown and notes when it stops.
struct NeighbourService: Service {
    let journal: Journal
    func run() async throws {
        try? await gracefulShutdown()
        journal.note("neighbour stopped")
    }
}

struct Boom: Error, CustomStringConvertible { var description: String { "boom" } }

func group(_ services: [ServiceGroupConfiguration.ServiceConfiguration]) -> ServiceGroup {
    ServiceGroup(configuration: ServiceGroupConfiguration(services: services, logger: Logger(label: "test")))
}

@Suite(.blocking) struct RoleServiceTests {
    @Test func gracefulShutdownDrainsTheRoleBeforeTheServicesStartedBeforeIt() async throws {
        let journal = Journal()
        let role = LoopRole(journal: journal)
        let serving = ReadinessSignal()
        let service = RoleService(
            name: "test", role: role,
            events: .init(serving: { journal.note("serving"); serving.ready() }, stopping: { journal.note("stopping") }))
        let g = group([.init(service: NeighbourService(journal: journal)), .init(service: service, successTerminationBehavior: .gracefullyShutdownGroup)])
        async let ran: Void = g.run()
        try await serving.wait()
        await g.triggerGracefulShutdown()
        try await ran
        #expect(journal.all == ["start", "serving", "stopping", "stop requested", "drained", "neighbour stopped"])
        let requests = role.stopRequests.load(ordering: .relaxed)
        #expect(requests == 1)
    }

    @Test func aStopWhileTheRoleIsStartingIsKeptAndItNeverReportsServing() async throws {
        let journal = Journal()
        let gate = DispatchSemaphore(value: 0)
        let role = LoopRole(journal: journal, startGate: gate)
        let service = RoleService(
            name: "test", role: role, events: .init(serving: { journal.note("serving") }, stopping: { journal.note("stopping") }))
        let g = group([.init(service: service)])
        async let ran: Void = g.run()
        await ThreadCall.blocking("test-wait") { role.inStart.wait() }
        await g.triggerGracefulShutdown()
        while !journal.all.contains("stop requested") { try await Task.sleep(for: .milliseconds(5)) }
        gate.signal()
        try await ran
        #expect(journal.all == ["start", "stopping", "stop requested", "drained"])
        let atOnce = role.stoppedAtOnce.load(ordering: .acquiring)
        #expect(atOnce)
    }

    @Test func aStopBeforeTheGroupRunsIsKept() async throws {
        let journal = Journal()
        let g = group([.init(service: RoleService(name: "test", role: LoopRole(journal: journal)))])
        await g.triggerGracefulShutdown()
        try await g.run()
        #expect(journal.all.contains("stop requested") && journal.all.last == "drained", "\(journal.all)")
    }

    @Test func aRoleThatCannotStartFailsTheGroupWithItsName() async throws {
        let journal = Journal()
        let g = group([
            .init(service: NeighbourService(journal: journal)),
            .init(service: RoleService(name: "broker", role: LoopRole(journal: journal, failure: Boom()))),
        ])
        let error = await #expect(throws: RoleStartError.self) { try await g.run() }
        #expect(error?.description == "broker: boom")
        #expect(journal.all == ["start", "neighbour stopped"])
    }

    @Test func aRoleThatEndsOnItsOwnEndsTheGroup() async throws {
        let journal = Journal()
        let role = LoopRole(journal: journal, turns: 3)
        let g = group([
            .init(service: NeighbourService(journal: journal)),
            .init(service: RoleService(name: "test", role: role), successTerminationBehavior: .gracefullyShutdownGroup),
        ])
        try await g.run()
        #expect(journal.all == ["start", "drained", "neighbour stopped"])
        let requests = role.stopRequests.load(ordering: .relaxed)
        #expect(requests == 0)
    }

    @Test func aTimeLimitDrainsTheRole() async throws {
        let journal = Journal()
        let role = LoopRole(journal: journal)
        let service = RoleService(name: "test", role: role, timeLimit: .milliseconds(20))
        try await group([.init(service: service, successTerminationBehavior: .gracefullyShutdownGroup)]).run()
        #expect(journal.all == ["start", "stop requested", "drained"])
    }

    @Test func theRoleNeverStartsWhenItsPrerequisiteFails() async throws {
        let journal = Journal()
        let ready = ReadinessSignal()
        ready.fail(Boom())
        let service = RoleService(name: "test", role: LoopRole(journal: journal), prerequisite: ready)
        await #expect(throws: Boom.self) { try await group([.init(service: service)]).run() }
        #expect(journal.all.isEmpty)
    }
}

@Suite(.blocking) struct StopAndReadinessTests {
    @Test func stopKeepsTheFirstReasonAndRunsLateActionsAtOnce() {
        let stop = StopRequest()
        let ran = Atomic<Int>(0)
        stop.attach { ran.add(1, ordering: .relaxed) }
        #expect(!stop.isRequested)
        stop.request("signal")
        stop.request("--duration reached")
        #expect(stop.reason == "signal")
        let once = ran.load(ordering: .relaxed)
        #expect(once == 1)
        stop.attach { ran.add(10, ordering: .relaxed) }
        let twice = ran.load(ordering: .relaxed)
        #expect(twice == 11)
    }

    @Test func readinessWakesEveryWaiterAndCancellationEndsAWait() async throws {
        let signal = ReadinessSignal()
        async let first: Void = signal.wait()
        async let second: Void = signal.wait()
        signal.ready()
        try await first
        try await second
        try await signal.wait()

        let never = ReadinessSignal()
        let waiter = Task { try await never.wait() }
        waiter.cancel()
        await #expect(throws: CancellationError.self) { try await waiter.value }
    }

    @Test func aBlockingJobRunsOnTheCallingThreadAndASignalAsksItToStop() throws {
        // SIGUSR2, not SIGTERM: the group leaves the signal ignored in this test process.
        let thread = Thread.current
        let reason = ProcessLifecycle.runBlocking(logger: Logger(label: "test"), signals: [.sigusr2]) { stop in
            #expect(Thread.current == thread)
            kill(getpid(), SIGUSR2)
            while !stop.isRequested { usleep(1000) }
            return stop.reason
        }
        #expect(reason == "signal")
        let plain = ProcessLifecycle.runBlocking(logger: Logger(label: "test"), signals: [.sigusr2]) { stop in stop.isRequested }
        #expect(plain == false)
    }
}
