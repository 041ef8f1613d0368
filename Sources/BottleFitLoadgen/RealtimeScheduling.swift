#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Real-time scheduling for the load generator's event loop (`realtime_priority`).
///
/// The loop needs about a third of a core at 20,000 frames/s, but it needs it on time: under the
/// normal (fair) scheduler, a machine whose cores are busy with other work leaves the woken loop
/// runnable but not running for milliseconds, and every frame due meanwhile is handled late (the
/// scheduling error of the report). `SCHED_FIFO` runs the loop as soon as it wakes. Measured on
/// a 2-core machine with both cores busy (docs/performance.md, "Load generator").
///
/// What it takes: root, `CAP_SYS_NICE`, or an `RLIMIT_RTPRIO` of at least the priority
/// (`ulimit -r`). The kernel's real-time throttling (`/proc/sys/kernel/sched_rt_runtime_us`,
/// 95% by default) keeps a loop that cannot keep up from taking a core for good.
public enum RealtimeScheduling {
    /// The priorities `SCHED_FIFO` takes on Linux.
    public static let priorities: ClosedRange<Int> = 1...99

    /// How the calling thread was scheduled before `enter`, to put back with `leave`.
    public struct Saved: Sendable {
        fileprivate let policy: Int32
        fileprivate let priority: Int32
    }

    /// Puts the calling thread under `SCHED_FIFO` at `priority`, or says why it cannot.
    public static func enter(priority: Int) throws(LoadgenError) -> Saved {
        #if os(Linux)
        guard priorities.contains(priority) else {
            throw LoadgenError("realtime_priority must be \(priorities.lowerBound)...\(priorities.upperBound), not \(priority)")
        }
        var policy: Int32 = 0
        var old = sched_param()
        let got = pthread_getschedparam(pthread_self(), &policy, &old)
        guard got == 0 else { throw LoadgenError("realtime_priority: cannot read this thread's scheduling (\(String(cString: strerror(got))))") }
        var param = sched_param()
        param.sched_priority = Int32(priority)
        let set = pthread_setschedparam(pthread_self(), SCHED_FIFO, &param)
        guard set == 0 else { throw LoadgenError("realtime_priority \(priority): \(refusal(set, priority: priority))") }
        return Saved(policy: policy, priority: old.sched_priority)
        #else
        throw LoadgenError("realtime_priority needs Linux (SCHED_FIFO)")
        #endif
    }

    /// Puts the calling thread back as it was before `enter` (lowering a priority is always allowed).
    public static func leave(_ saved: Saved) {
        #if os(Linux)
        var param = sched_param()
        param.sched_priority = saved.priority
        _ = pthread_setschedparam(pthread_self(), saved.policy, &param)
        #endif
    }

    /// Whether this process may use `priority`, found by trying it on the calling thread and
    /// putting the thread back at once: the check `bottlefit loadgen` makes before it starts
    /// anything, so that a refusal costs nothing.
    public static func check(priority: Int) throws(LoadgenError) {
        leave(try enter(priority: priority))
    }

    private static func refusal(_ code: Int32, priority: Int) -> String {
        guard code == EPERM else { return String(cString: strerror(code)) }
        var allowed = "unknown"
        #if canImport(Glibc)
        var limit = rlimit()
        if getrlimit(__rlimit_resource_t(__RLIMIT_RTPRIO.rawValue), &limit) == 0 { allowed = "\(limit.rlim_cur)" }
        #endif
        return "SCHED_FIFO is not permitted here: it needs root, CAP_SYS_NICE, or a real-time priority limit of at least \(priority) (`ulimit -r`; now \(allowed))"
    }
}
