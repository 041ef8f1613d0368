/// The typed configuration of one fleet process, and the argv that runs it (`bottlefit` + `arguments`).
/// Every value a topology sets is a field here; the argv is written from `RoleFlags`, the names the
/// role commands declare their options with. Unset optional fields leave the role's default.

/// `bottlefit broker`.
public struct BrokerLaunch: Sendable, Equatable {
    public var frontend: String
    public var backend: String
    public var stats: String
    public var queueCapacity: Int?
    public var metrics: String?
    public var curve: Curve?
    public var logLevel: String

    /// The broker's key and allow-list files under CURVE.
    public struct Curve: Sendable, Equatable {
        public var key: String
        public var allowCameras: String
        public var allowWorkers: String
        public var allowStats: String
        public init(key: String, allowCameras: String, allowWorkers: String, allowStats: String) {
            self.key = key
            self.allowCameras = allowCameras
            self.allowWorkers = allowWorkers
            self.allowStats = allowStats
        }
    }

    public init(frontend: String, backend: String, stats: String, queueCapacity: Int? = nil, metrics: String? = nil,
                curve: Curve? = nil, logLevel: String = "info") {
        self.frontend = frontend
        self.backend = backend
        self.stats = stats
        self.queueCapacity = queueCapacity
        self.metrics = metrics
        self.curve = curve
        self.logLevel = logLevel
    }

    public var arguments: [String] {
        var a = ArgumentList(RoleCommandName.broker)
        a.add(BrokerFlags.frontend, frontend)
        a.add(BrokerFlags.backend, backend)
        a.add(CommonFlags.stats, stats)
        a.add(BrokerFlags.queueCapacity, queueCapacity)
        a.add(CommonFlags.metrics, metrics)
        a.add(CommonFlags.curveKey, curve?.key)
        a.add(CommonFlags.allowCameras, curve?.allowCameras)
        a.add(BrokerFlags.allowWorkers, curve?.allowWorkers)
        a.add(BrokerFlags.allowStats, curve?.allowStats)
        a.add(CommonFlags.logLevel, logLevel)
        return a.items
    }
}

/// A process's own CURVE secret key and the public key of the server it connects to.
public struct ClientCurve: Sendable, Equatable {
    public var key: String
    public var brokerKey: String
    public init(key: String, brokerKey: String) {
        self.key = key
        self.brokerKey = brokerKey
    }
}

/// `bottlefit worker`.
public struct WorkerLaunch: Sendable, Equatable {
    /// One `--model NAME=TAIL[,FULL]`.
    public struct Model: Sendable, Equatable {
        public var name: String
        public var tail: String?
        public var full: String?
        public init(name: String, tail: String?, full: String?) {
            self.name = name
            self.tail = tail
            self.full = full
        }
        /// "NAME=TAIL", "NAME=TAIL,FULL" or "NAME=,FULL": the value of `--model`.
        public var argument: String { "\(name)=\(tail ?? "")" + (full.map { ",\($0)" } ?? "") }
    }

    public var broker: String
    public var id: String
    public var models: [Model]
    public var credit: Int?
    public var maxBatch: Int?
    public var threads: Int?
    public var metrics: String?
    public var curve: ClientCurve?
    public var logLevel: String

    public init(broker: String, id: String, models: [Model], credit: Int? = nil, maxBatch: Int? = nil, threads: Int? = nil,
                metrics: String? = nil, curve: ClientCurve? = nil, logLevel: String = "info") {
        self.broker = broker
        self.id = id
        self.models = models
        self.credit = credit
        self.maxBatch = maxBatch
        self.threads = threads
        self.metrics = metrics
        self.curve = curve
        self.logLevel = logLevel
    }

    public var arguments: [String] {
        var a = ArgumentList(RoleCommandName.worker)
        a.add(CommonFlags.broker, broker)
        a.add(CommonFlags.id, id)
        for m in models { a.add(CommonFlags.model, m.argument) }
        a.add(WorkerFlags.credit, credit)
        a.add(WorkerFlags.maxBatch, maxBatch)
        a.add(CommonFlags.threads, threads)
        a.add(CommonFlags.metrics, metrics)
        a.add(CommonFlags.curveKey, curve?.key)
        a.add(CommonFlags.brokerKey, curve?.brokerKey)
        a.add(CommonFlags.logLevel, logLevel)
        return a.items
    }
}

/// `bottlefit controller`.
public struct ControllerLaunch: Sendable, Equatable {
    public var stats: String
    public var publish: String
    public var sloMs: Int?
    public var latencySloMs: Int?
    public var metrics: String?
    /// CURVE: its key, the broker's public key, and the cameras allowed to subscribe.
    public var curve: ClientCurve?
    public var allowCameras: String?
    public var logLevel: String

    public init(stats: String, publish: String, sloMs: Int? = nil, latencySloMs: Int? = nil, metrics: String? = nil,
                curve: ClientCurve? = nil, allowCameras: String? = nil, logLevel: String = "info") {
        self.stats = stats
        self.publish = publish
        self.sloMs = sloMs
        self.latencySloMs = latencySloMs
        self.metrics = metrics
        self.curve = curve
        self.allowCameras = allowCameras
        self.logLevel = logLevel
    }

    public var arguments: [String] {
        var a = ArgumentList(RoleCommandName.controller)
        a.add(CommonFlags.stats, stats)
        a.add(ControllerFlags.publish, publish)
        a.add(CommonFlags.sloMs, sloMs)
        a.add(ControllerFlags.latencySloMs, latencySloMs)
        a.add(CommonFlags.metrics, metrics)
        a.add(CommonFlags.curveKey, curve?.key)
        a.add(CommonFlags.brokerKey, curve?.brokerKey)
        a.add(CommonFlags.allowCameras, allowCameras)
        a.add(CommonFlags.logLevel, logLevel)
        return a.items
    }
}

/// `bottlefit device` (a camera).
public struct CameraLaunch: Sendable, Equatable {
    public var id: String
    public var mode: String
    public var model: String
    /// The broker's frontend (split and offload cameras).
    public var broker: String?
    /// The controller's directive endpoint, when the fleet has a controller.
    public var directives: String?
    public var head: String?
    public var full: String?
    public var source: String
    public var rate: Double?
    public var sloMs: Int?
    public var threads: Int?
    public var metrics: String?
    public var curve: ClientCurve?
    /// The controller's public key (CURVE with a controller).
    public var controllerKey: String?
    public var logLevel: String

    public init(id: String, mode: String, model: String, broker: String? = nil, directives: String? = nil, head: String? = nil,
                full: String? = nil, source: String = "synthetic", rate: Double? = nil, sloMs: Int? = nil, threads: Int? = nil,
                metrics: String? = nil, curve: ClientCurve? = nil, controllerKey: String? = nil, logLevel: String = "info") {
        self.id = id
        self.mode = mode
        self.model = model
        self.broker = broker
        self.directives = directives
        self.head = head
        self.full = full
        self.source = source
        self.rate = rate
        self.sloMs = sloMs
        self.threads = threads
        self.metrics = metrics
        self.curve = curve
        self.controllerKey = controllerKey
        self.logLevel = logLevel
    }

    public var arguments: [String] {
        var a = ArgumentList(RoleCommandName.camera)
        a.add(CommonFlags.id, id)
        a.add(DeviceFlags.mode, mode)
        a.add(CommonFlags.model, model)
        a.add(CommonFlags.broker, broker)
        a.add(DeviceFlags.directives, directives)
        a.add(DeviceFlags.head, head)
        a.add(DeviceFlags.full, full)
        a.add(DeviceFlags.source, source)
        a.add(DeviceFlags.rate, rate)
        a.add(CommonFlags.sloMs, sloMs)
        a.add(CommonFlags.threads, threads)
        a.add(CommonFlags.metrics, metrics)
        a.add(CommonFlags.curveKey, curve?.key)
        a.add(CommonFlags.brokerKey, curve?.brokerKey)
        a.add(DeviceFlags.controllerKey, controllerKey)
        a.add(CommonFlags.logLevel, logLevel)
        return a.items
    }
}

/// One process of a fleet: its name (the log prefix) and its typed configuration.
public struct FleetRole: Sendable, Equatable {
    /// What it runs; also the start order (broker, workers, controller, cameras) and, reversed, the stop order.
    public enum Kind: String, Sendable, CaseIterable { case broker, worker, controller, camera }

    public enum Launch: Sendable, Equatable {
        case broker(BrokerLaunch)
        case worker(WorkerLaunch)
        case controller(ControllerLaunch)
        case camera(CameraLaunch)
    }

    public var name: String
    public var launch: Launch

    public init(name: String, launch: Launch) {
        self.name = name
        self.launch = launch
    }

    public var kind: Kind {
        switch launch {
        case .broker: .broker
        case .worker: .worker
        case .controller: .controller
        case .camera: .camera
        }
    }

    /// The `bottlefit` arguments that run it.
    public var arguments: [String] {
        switch launch {
        case .broker(let b): b.arguments
        case .worker(let w): w.arguments
        case .controller(let c): c.arguments
        case .camera(let c): c.arguments
        }
    }
}
