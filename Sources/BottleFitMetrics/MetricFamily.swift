/// The kind of a metric family, the word after `# TYPE` in the Prometheus text format.
public enum MetricType: String, Sendable, Equatable {
    /// Only ever goes up (or resets with the process); the name ends in `_total`.
    case counter
    /// A value that goes up and down (queue depth, fraction of cameras sent local).
    case gauge
    /// Cumulative `_bucket{le=...}` counts, `_sum` and `_count`.
    case histogram
}

/// One line of a family: a suffix to the family's name (`""`, `"_bucket"`, `"_sum"`, `"_count"`),
/// its labels in the order written, and the value.
public struct MetricSample: Sendable, Equatable {
    public var suffix: String
    public var labels: [(name: String, value: String)]
    public var value: Double

    public init(suffix: String = "", labels: [(name: String, value: String)] = [], value: Double) {
        self.suffix = suffix
        self.labels = labels
        self.value = value
    }

    public static func == (a: MetricSample, b: MetricSample) -> Bool {
        a.suffix == b.suffix && a.value.bitPattern == b.value.bitPattern
            && a.labels.map(\.name) == b.labels.map(\.name) && a.labels.map(\.value) == b.labels.map(\.value)
    }
}

/// A metric family as it is exposed: one `# HELP`, one `# TYPE`, then its samples.
///
/// Families are built from a snapshot of a process's counters each time they are scraped
/// (like the Prometheus Go client's "const metrics"), never kept as live registries: the
/// counters already live in one value per process, and a second copy could only drift.
public struct MetricFamily: Sendable, Equatable {
    /// The family name, e.g. `bottlefit_broker_frames_received_total`. Counters end in `_total`.
    public var name: String
    public var help: String
    public var type: MetricType
    public var samples: [MetricSample]

    public init(name: String, help: String, type: MetricType, samples: [MetricSample]) {
        precondition(MetricName.isValid(name), "invalid metric name \(name)")
        precondition(type != .counter || name.hasSuffix("_total"), "counter \(name) must end in _total")
        self.name = name
        self.help = help
        self.type = type
        self.samples = samples
    }

    /// A counter family; `values` are (labels, count), one sample each.
    public static func counter(
        _ name: String, _ help: String, _ values: [(labels: [(name: String, value: String)], value: Int)]
    ) -> MetricFamily {
        MetricFamily(name: name, help: help, type: .counter,
                     samples: values.map { MetricSample(labels: $0.labels, value: Double($0.value)) })
    }

    /// A counter family with one unlabelled sample.
    public static func counter(_ name: String, _ help: String, _ value: Int, labels: [(name: String, value: String)] = []) -> MetricFamily {
        counter(name, help, [(labels, value)])
    }

    /// A gauge family; `values` are (labels, value), one sample each.
    public static func gauge(
        _ name: String, _ help: String, _ values: [(labels: [(name: String, value: String)], value: Double)]
    ) -> MetricFamily {
        MetricFamily(name: name, help: help, type: .gauge, samples: values.map { MetricSample(labels: $0.labels, value: $0.value) })
    }

    /// A gauge family with one sample.
    public static func gauge(_ name: String, _ help: String, _ value: Double, labels: [(name: String, value: String)] = []) -> MetricFamily {
        gauge(name, help, [(labels, value)])
    }

    /// A histogram family: for each (labels, histogram), its cumulative buckets, `_sum` and `_count`.
    public static func histogram(
        _ name: String, _ help: String, _ values: [(labels: [(name: String, value: String)], histogram: BucketHistogram)]
    ) -> MetricFamily {
        var samples: [MetricSample] = []
        for (labels, histogram) in values {
            var cumulative = 0
            for (bound, count) in zip(histogram.upperBounds, histogram.bucketCounts) {
                cumulative += count
                samples.append(MetricSample(suffix: "_bucket", labels: labels + [("le", PrometheusText.format(bound))], value: Double(cumulative)))
            }
            samples.append(MetricSample(suffix: "_bucket", labels: labels + [("le", "+Inf")], value: Double(histogram.count)))
            samples.append(MetricSample(suffix: "_sum", labels: labels, value: histogram.sum))
            samples.append(MetricSample(suffix: "_count", labels: labels, value: Double(histogram.count)))
        }
        return MetricFamily(name: name, help: help, type: .histogram, samples: samples)
    }
}

/// The rules for metric and label names of the text format.
public enum MetricName {
    /// `[a-zA-Z_:][a-zA-Z0-9_:]*`
    public static func isValid(_ name: String) -> Bool {
        guard let first = name.utf8.first, isStart(first) || first == UInt8(ascii: ":") else { return false }
        return name.utf8.allSatisfy { isStart($0) || isDigit($0) || $0 == UInt8(ascii: ":") }
    }

    /// `[a-zA-Z_][a-zA-Z0-9_]*`, and not starting with `__` (reserved for Prometheus itself).
    public static func isValidLabel(_ name: String) -> Bool {
        guard let first = name.utf8.first, isStart(first), !name.hasPrefix("__") else { return false }
        return name.utf8.allSatisfy { isStart($0) || isDigit($0) }
    }

    private static func isStart(_ c: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(c) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(c) || c == UInt8(ascii: "_")
    }

    private static func isDigit(_ c: UInt8) -> Bool { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c) }
}
