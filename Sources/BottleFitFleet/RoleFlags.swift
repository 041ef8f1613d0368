/// A long option of a role command, declared once. The role command names its `@Option` with it
/// (`@Option(name: .role(WorkerFlags.maxBatch))`) and the fleet writes the same value into the
/// child's argv, so renaming an option renames both, and deleting one fails to compile; the
/// round-trip tests (Tests/BottleFitFleetTests) parse every generated argv with the role's parser.
public struct RoleFlag: Sendable, Hashable, CustomStringConvertible {
    /// The name without dashes: "max-batch".
    public let name: String
    public init(_ name: String) { self.name = name }
    /// "--max-batch".
    public var description: String { "--" + name }
}

/// The subcommand that runs each kind of fleet process (`bottlefit worker`, `bottlefit device`, ...).
public enum RoleCommandName {
    public static let broker = "broker"
    public static let worker = "worker"
    public static let controller = "controller"
    /// A camera runs as `bottlefit device`.
    public static let camera = "device"
}

/// Options several roles share.
public enum CommonFlags {
    public static let logLevel = RoleFlag("log-level")
    public static let logFormat = RoleFlag("log-format")
    public static let metrics = RoleFlag("metrics")
    public static let threads = RoleFlag("threads")
    public static let curveKey = RoleFlag("curve-key")
    public static let brokerKey = RoleFlag("broker-key")
    public static let allowCameras = RoleFlag("allow-cameras")
    public static let sloMs = RoleFlag("slo-ms")
    public static let broker = RoleFlag("broker")
    public static let id = RoleFlag("id")
    public static let model = RoleFlag("model")
    public static let stats = RoleFlag("stats")
}

/// `bottlefit broker`'s options that a fleet sets.
public enum BrokerFlags {
    public static let frontend = RoleFlag("frontend")
    public static let backend = RoleFlag("backend")
    public static let queueCapacity = RoleFlag("queue-capacity")
    public static let allowWorkers = RoleFlag("allow-workers")
    public static let allowStats = RoleFlag("allow-stats")
}

/// `bottlefit worker`'s options that a fleet sets.
public enum WorkerFlags {
    public static let credit = RoleFlag("credit")
    public static let maxBatch = RoleFlag("max-batch")
}

/// `bottlefit controller`'s options that a fleet sets.
public enum ControllerFlags {
    public static let publish = RoleFlag("publish")
    public static let latencySloMs = RoleFlag("latency-slo-ms")
}

/// `bottlefit device`'s options that a fleet sets.
public enum DeviceFlags {
    public static let directives = RoleFlag("directives")
    public static let mode = RoleFlag("mode")
    public static let head = RoleFlag("head")
    public static let full = RoleFlag("full")
    public static let source = RoleFlag("source")
    public static let rate = RoleFlag("rate")
    public static let controllerKey = RoleFlag("controller-key")
}

/// An argv under construction: each value after its flag, optional ones only when set.
struct ArgumentList {
    private(set) var items: [String]

    init(_ subcommand: String) { items = [subcommand] }

    mutating func add(_ flag: RoleFlag, _ value: String?) {
        if let value { items += [flag.description, value] }
    }

    mutating func add<V: LosslessStringConvertible>(_ flag: RoleFlag, _ value: V?) {
        if let value { items += [flag.description, value.description] }
    }
}
