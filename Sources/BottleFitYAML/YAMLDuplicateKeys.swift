import Yams

/// Duplicate keys in a YAML mapping: libyaml accepts them and a decoder keeps one silently (the
/// last, or the first), so a topology or scenario that sets a key twice would run with half of
/// what it says. Both file readers refuse them with both lines.
public enum YAMLDuplicateKeys {
    /// The first key that appears twice in any mapping of the tree, depth first, in file order:
    /// its text, the line of the repeat and the line of the first (1-based; 0 when unknown).
    public static func first(in node: Node) -> (key: String, line: Int, firstLine: Int)? {
        switch node {
        case .mapping(let mapping):
            var seen: [String: Int] = [:]
            for (key, value) in mapping {
                let text = key.string ?? "\(key)"
                let line = key.mark?.line ?? 0
                if let first = seen[text] { return (text, line, first) }
                seen[text] = line
                if let inner = first(in: value) { return inner }
            }
            return nil
        case .sequence(let sequence):
            for item in sequence { if let inner = first(in: item) { return inner } }
            return nil
        default:
            return nil
        }
    }
}
