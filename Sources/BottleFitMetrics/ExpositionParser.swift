/// Reads a Prometheus text exposition (0.0.4) back, strictly: the checker the tests use on what a
/// real `/metrics` serves. Written from the format's grammar, not from `PrometheusText`, so it
/// does not share the renderer's mistakes.
///
/// Beyond the line grammar it checks what a scraper relies on: one HELP and one TYPE per family,
/// before its samples; a family's samples together; no series twice; sample names that fit the
/// family's type; counters not negative; a histogram's buckets cumulative, ending in `+Inf`,
/// with `_count` equal to the `+Inf` bucket.
public enum ExpositionParser {
    /// One family as read.
    public struct Family: Sendable, Equatable {
        public var name: String
        public var help: String?
        public var type: String
        public var samples: [Sample]
    }

    /// One sample line.
    public struct Sample: Sendable, Equatable {
        public var name: String
        public var labels: [String: String]
        public var value: Double

        public init(name: String, labels: [String: String], value: Double) {
            self.name = name
            self.labels = labels
            self.value = value
        }

        public static func == (a: Sample, b: Sample) -> Bool {
            a.name == b.name && a.labels == b.labels && (a.value == b.value || (a.value.isNaN && b.value.isNaN))
        }
    }

    /// What is wrong, with the line number (1-based).
    public struct Problem: Error, Sendable, Equatable, CustomStringConvertible {
        public var line: Int
        public var reason: String
        public var description: String { "line \(line): \(reason)" }
    }

    /// The families of `text`, in order, or the first problem.
    public static func parse(_ text: String) throws(Problem) -> [Family] {
        guard text.isEmpty || text.hasSuffix("\n") else { throw Problem(line: 0, reason: "the last line must end with a line feed") }
        var families: [Family] = []
        var index: [String: Int] = [:]
        var finished = Set<String>()  // families whose block has ended
        var series = Set<String>()
        var typeSeen = Set<String>()
        var current: String?

        func family(for sampleName: String) -> String? {
            if index[sampleName] != nil { return sampleName }
            for suffix in ["_bucket", "_sum", "_count"] where sampleName.hasSuffix(suffix) {
                let base = String(sampleName.dropLast(suffix.count))
                if let i = index[base], families[i].type == "histogram" || families[i].type == "summary" { return base }
            }
            return nil
        }
        func enter(_ name: String, line: Int) throws(Problem) {
            if current == name { return }
            if let current { finished.insert(current) }
            guard !finished.contains(name) else { throw Problem(line: line, reason: "\(name) appears again after other families") }
            current = name
        }

        for (offset, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().enumerated() {
            let number = offset + 1
            let line = raw.drop { $0 == " " || $0 == "\t" }
            if line.isEmpty { continue }
            if line.hasPrefix("#") {
                let tokens = line.dropFirst().split(maxSplits: 2, whereSeparator: { $0 == " " || $0 == "\t" })
                guard tokens.count >= 2, tokens[0] == "HELP" || tokens[0] == "TYPE" else { continue }  // a comment
                let name = String(tokens[1])
                guard isMetricName(name) else { throw Problem(line: number, reason: "invalid metric name \(name)") }
                try enter(name, line: number)
                let i = index[name] ?? {
                    families.append(Family(name: name, help: nil, type: "untyped", samples: []))
                    index[name] = families.count - 1
                    return families.count - 1
                }()
                if tokens[0] == "HELP" {
                    guard families[i].help == nil else { throw Problem(line: number, reason: "second HELP for \(name)") }
                    let help = tokens.count > 2 ? String(tokens[2]) : ""
                    guard let unescaped = unescape(help, quotes: false) else { throw Problem(line: number, reason: "bad escape in HELP") }
                    families[i].help = unescaped
                } else {
                    guard tokens.count == 3 else { throw Problem(line: number, reason: "TYPE needs a name and a type") }
                    let type = String(tokens[2]).trimmingTrailingWhitespace
                    guard ["counter", "gauge", "histogram", "summary", "untyped"].contains(type) else {
                        throw Problem(line: number, reason: "unknown type \(type)")
                    }
                    guard families[i].samples.isEmpty else { throw Problem(line: number, reason: "TYPE of \(name) after its samples") }
                    guard !typeSeen.contains(name) else {
                        throw Problem(line: number, reason: "second TYPE for \(name)")
                    }
                    typeSeen.insert(name)
                    families[i].type = type
                }
                continue
            }
            let sample = try parseSample(String(line), line: number)
            guard let owner = family(for: sample.name) else {
                throw Problem(line: number, reason: "\(sample.name) has no TYPE (this checker wants every family declared)")
            }
            try enter(owner, line: number)
            let key = sample.name + "{" + sample.labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",") + "}"
            guard series.insert(key).inserted else { throw Problem(line: number, reason: "series \(key) appears twice") }
            let i = index[owner]!
            switch families[i].type {
            case "counter":
                guard sample.name == owner else { throw Problem(line: number, reason: "\(sample.name) in counter \(owner)") }
                guard sample.value >= 0 else { throw Problem(line: number, reason: "counter \(owner) is negative or NaN") }
            case "gauge", "untyped":
                guard sample.name == owner else { throw Problem(line: number, reason: "\(sample.name) in \(owner)") }
            case "histogram":
                guard sample.name != owner else { throw Problem(line: number, reason: "histogram \(owner) has a bare sample") }
                if sample.name.hasSuffix("_bucket") {
                    guard let le = sample.labels["le"], parseValue(le) != nil else {
                        throw Problem(line: number, reason: "bucket without a valid le label")
                    }
                }
            default:
                break
            }
            families[i].samples.append(sample)
        }
        for family in families where family.type == "histogram" {
            try checkHistogram(family)
        }
        return families
    }

    private static func checkHistogram(_ family: Family) throws(Problem) {
        var groups: [[String: String]: (buckets: [(Double, Double)], count: Double?)] = [:]
        for s in family.samples {
            var labels = s.labels
            let le = labels.removeValue(forKey: "le")
            var g = groups[labels] ?? ([], nil)
            if s.name.hasSuffix("_bucket"), let le, let bound = parseValue(le) { g.buckets.append((bound, s.value)) }
            if s.name.hasSuffix("_count") { g.count = s.value }
            groups[labels] = g
        }
        for (labels, g) in groups {
            let sorted = g.buckets.sorted { $0.0 < $1.0 }
            guard let last = sorted.last, last.0 == .infinity else {
                throw Problem(line: 0, reason: "histogram \(family.name)\(labels) has no +Inf bucket")
            }
            for (a, b) in zip(sorted, sorted.dropFirst()) where b.1 < a.1 {
                throw Problem(line: 0, reason: "histogram \(family.name)\(labels) buckets are not cumulative at le=\(b.0)")
            }
            guard g.count == last.1 else { throw Problem(line: 0, reason: "histogram \(family.name)\(labels): _count differs from the +Inf bucket") }
        }
    }

    // MARK: Sample lines

    private static func parseSample(_ line: String, line number: Int) throws(Problem) -> Sample {
        let chars = Array(line.unicodeScalars)
        var i = 0
        while i < chars.count, isNameChar(chars[i], first: i == 0) { i += 1 }
        let name = String(String.UnicodeScalarView(chars[0..<i]))
        guard !name.isEmpty else { throw Problem(line: number, reason: "a sample line must start with a metric name") }
        var labels: [String: String] = [:]
        if i < chars.count, chars[i] == "{" {
            i += 1
            while true {
                while i < chars.count, chars[i] == " " { i += 1 }
                if i < chars.count, chars[i] == "}" { i += 1; break }
                let start = i
                while i < chars.count, isNameChar(chars[i], first: i == start), chars[i] != ":" { i += 1 }
                let label = String(String.UnicodeScalarView(chars[start..<i]))
                guard !label.isEmpty, i + 1 < chars.count, chars[i] == "=", chars[i + 1] == "\"" else {
                    throw Problem(line: number, reason: "expected label=\"value\"")
                }
                i += 2
                var value = String.UnicodeScalarView()
                var closed = false
                while i < chars.count {
                    let c = chars[i]
                    if c == "\\" {
                        guard i + 1 < chars.count else { break }
                        switch chars[i + 1] {
                        case "\\": value.append("\\")
                        case "\"": value.append("\"")
                        case "n": value.append("\n")
                        default: throw Problem(line: number, reason: "bad escape in a label value")
                        }
                        i += 2
                    } else if c == "\"" {
                        closed = true
                        i += 1
                        break
                    } else {
                        value.append(c)
                        i += 1
                    }
                }
                guard closed else { throw Problem(line: number, reason: "unterminated label value") }
                guard labels.updateValue(String(value), forKey: label) == nil else {
                    throw Problem(line: number, reason: "label \(label) twice")
                }
                while i < chars.count, chars[i] == " " { i += 1 }
                if i < chars.count, chars[i] == "," { i += 1; continue }
                guard i < chars.count, chars[i] == "}" else { throw Problem(line: number, reason: "expected , or } after a label") }
                i += 1
                break
            }
        }
        let rest = String(String.UnicodeScalarView(chars[i...])).split(whereSeparator: { $0 == " " || $0 == "\t" })
        guard rest.count == 1 || rest.count == 2 else { throw Problem(line: number, reason: "expected a value (and an optional timestamp)") }
        guard let value = parseValue(String(rest[0])) else { throw Problem(line: number, reason: "invalid value \(rest[0])") }
        if rest.count == 2, Int64(rest[1]) == nil { throw Problem(line: number, reason: "invalid timestamp \(rest[1])") }
        return Sample(name: name, labels: labels, value: value)
    }

    /// A value as Go's ParseFloat reads it, plus the format's `+Inf`, `-Inf` and `NaN`.
    public static func parseValue(_ text: String) -> Double? {
        switch text {
        case "+Inf", "Inf": return .infinity
        case "-Inf": return -.infinity
        case "NaN": return .nan
        default:
            guard !text.isEmpty, text.unicodeScalars.allSatisfy({ "0123456789.eE+-".unicodeScalars.contains($0) }) else { return nil }
            return Double(text)
        }
    }

    private static func isMetricName(_ name: String) -> Bool {
        let chars = Array(name.unicodeScalars)
        return !chars.isEmpty && chars.enumerated().allSatisfy { isNameChar($0.element, first: $0.offset == 0) }
    }

    private static func isNameChar(_ c: Unicode.Scalar, first: Bool) -> Bool {
        switch c {
        case "a"..."z", "A"..."Z", "_", ":": return true
        case "0"..."9": return !first
        default: return false
        }
    }

    private static func unescape(_ text: String, quotes: Bool) -> String? {
        var out = String.UnicodeScalarView()
        var it = text.unicodeScalars.makeIterator()
        while let c = it.next() {
            guard c == "\\" else { out.append(c); continue }
            switch it.next() {
            case "\\": out.append("\\")
            case "n": out.append("\n")
            default: return nil
            }
        }
        return String(out)
    }
}

extension String {
    fileprivate var trimmingTrailingWhitespace: String {
        var s = Substring(self)
        while let c = s.last, c == " " || c == "\t" { s = s.dropLast() }
        return String(s)
    }
}
