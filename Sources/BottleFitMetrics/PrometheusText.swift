/// The Prometheus text exposition format, version 0.0.4: what `GET /metrics` answers.
///
/// Each family is written as `# HELP`, `# TYPE` and its samples, lines end in `\n` (the last
/// one too). HELP text escapes `\` and newline; label values escape `\`, `"` and newline.
/// Integral values are written without a fraction, infinities as `+Inf`/`-Inf`.
public enum PrometheusText {
    /// The `Content-Type` of an exposition.
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    /// The exposition of `families`, in the order given. Family names must be unique.
    public static func render(_ families: [MetricFamily]) -> String {
        var out = ""
        out.reserveCapacity(families.count * 160)
        var seen = Set<String>()
        for family in families {
            precondition(seen.insert(family.name).inserted, "metric family \(family.name) appears twice")
            out += "# HELP \(family.name) \(escapeHelp(family.help))\n"
            out += "# TYPE \(family.name) \(family.type.rawValue)\n"
            for sample in family.samples {
                out += family.name
                out += sample.suffix
                if !sample.labels.isEmpty {
                    out += "{"
                    for (i, label) in sample.labels.enumerated() {
                        precondition(MetricName.isValidLabel(label.name) || label.name == "le", "invalid label name \(label.name)")
                        if i > 0 { out += "," }
                        out += label.name
                        out += "=\""
                        out += escapeLabelValue(label.value)
                        out += "\""
                    }
                    out += "}"
                }
                out += " "
                out += format(sample.value)
                out += "\n"
            }
        }
        return out
    }

    /// A sample value as the format writes it: `42`, `0.25`, `+Inf`, `-Inf`, `NaN`.
    public static func format(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        if value == value.rounded(), abs(value) < 9_007_199_254_740_992 { return String(Int64(value)) }
        return value.description
    }

    static func escapeHelp(_ text: String) -> String { escape(text, quotes: false) }

    static func escapeLabelValue(_ text: String) -> String { escape(text, quotes: true) }

    /// Backslash and newline always; the double quote only inside label values.
    private static func escape(_ text: String, quotes: Bool) -> String {
        var out = ""
        for c in text.unicodeScalars {
            switch c {
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\"" where quotes: out += "\\\""
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }
}
