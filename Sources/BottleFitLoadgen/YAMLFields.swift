import BottleFitCore
import BottleFitYAML
import Foundation
import Yams

/// A YAML mapping read field by field, so every problem is reported as `FILE:LINE: key.path: reason`,
/// the format of `bottlefit up`'s topology errors (Sources/bottlefit/TopologyFile.swift): the file is
/// composed first (libyaml's syntax errors carry their line), then each value is read from the node
/// tree, which knows the line of every key.
struct YAMLFields {
    let node: Node
    let file: String
    let keyPath: [String]

    /// Reads and composes `text`; an empty document is an error.
    static func document(_ text: String, file: String) throws(LoadgenError) -> YAMLFields {
        let root: Node?
        do { root = try Yams.compose(yaml: text) } catch {
            throw LoadgenError("\(file):\(withoutSnippet("\(error)")) (not valid YAML)")
        }
        guard let root else { throw LoadgenError("\(file): the file is empty") }
        if let d = YAMLDuplicateKeys.first(in: root) {
            throw LoadgenError("\(file):\(d.line): duplicate key '\(d.key)' (first at line \(d.firstLine)); a key may appear once per mapping")
        }
        let fields = YAMLFields(node: root, file: file, keyPath: [])
        guard root.mapping != nil else { throw fields.error(nil, "expected a mapping at the top level") }
        return fields
    }

    static func load(path: String) throws(LoadgenError) -> YAMLFields {
        let text: String
        do { text = try FileBytes.text(of: path) } catch { throw LoadgenError(error.description) }
        return try document(text, file: path)
    }

    private var mapping: Node.Mapping { node.mapping ?? Node.Mapping([]) }

    /// The value node of `key` and the line of the key.
    private func entry(_ key: String) -> (value: Node, line: Int?)? {
        guard let e = mapping.first(where: { $0.key.string == key }) else { return nil }
        // An explicit null (`key:` or `key: ~`) counts as absent, as in the protocol's optional fields.
        if case .scalar(let s) = e.value, s.style == .plain, ["", "~", "null", "Null", "NULL"].contains(s.string) {
            return nil
        }
        return (e.value, e.key.mark?.line)
    }

    var keys: [String] { mapping.compactMap { $0.key.string } }

    func has(_ key: String) -> Bool { entry(key) != nil }

    /// `FILE:LINE: key.path: reason`, at the key's line (or the mapping's when the key is absent).
    func error(_ key: String?, _ reason: String) -> LoadgenError {
        let line = key.flatMap { entry($0)?.line } ?? node.mark?.line
        let path = (keyPath + (key.map { [$0] } ?? [])).joined(separator: ".")
        return LoadgenError("\(file)\(line.map { ":\($0)" } ?? ""): \(path.isEmpty ? "" : path + ": ")\(reason)")
    }

    /// Refuses keys outside `allowed`: a typo must not pass silently.
    func rejectUnknownKeys(_ allowed: [String]) throws(LoadgenError) {
        for e in mapping {
            guard let k = e.key.string else { throw error(nil, "keys must be strings") }
            if !allowed.contains(k) {
                throw error(k, "unknown key \(k) (expected one of: \(allowed.joined(separator: ", ")))")
            }
        }
    }

    func string(_ key: String) throws(LoadgenError) -> String? {
        guard let (value, _) = entry(key) else { return nil }
        guard case .scalar(let s) = value else { throw error(key, "expected a string") }
        return s.string
    }

    func double(_ key: String) throws(LoadgenError) -> Double? {
        guard let text = try string(key) else { return nil }
        guard let v = Double(text.trimmingCharacters(in: .whitespaces)), v.isFinite else {
            throw error(key, "expected a number, found \(text)")
        }
        // No figure of a profile is anywhere near this; beyond it emulated times overflow.
        guard abs(v) <= 1e9 else { throw error(key, "must be at most 1000000000 in magnitude, not \(text)") }
        return v
    }

    func int(_ key: String) throws(LoadgenError) -> Int? {
        guard let text = try string(key) else { return nil }
        guard let v = Int(text.trimmingCharacters(in: .whitespaces)) else { throw error(key, "expected an integer, found \(text)") }
        return v
    }

    func bool(_ key: String) throws(LoadgenError) -> Bool? {
        guard let text = try string(key) else { return nil }
        switch text.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: throw error(key, "expected true or false, found \(text)")
        }
    }

    /// A required number.
    func requiredDouble(_ key: String) throws(LoadgenError) -> Double {
        guard let v = try double(key) else { throw error(nil, "missing required key \(key)") }
        return v
    }

    func mapping(_ key: String) throws(LoadgenError) -> YAMLFields? {
        guard let (value, _) = entry(key) else { return nil }
        guard value.mapping != nil else { throw error(key, "expected a mapping") }
        return YAMLFields(node: value, file: file, keyPath: keyPath + [key])
    }

    /// A list of mappings.
    func mappings(_ key: String) throws(LoadgenError) -> [YAMLFields]? {
        guard let (value, _) = entry(key) else { return nil }
        guard let sequence = value.sequence else { throw error(key, "expected a list") }
        var out: [YAMLFields] = []
        for (i, item) in sequence.enumerated() {
            let f = YAMLFields(node: item, file: file, keyPath: keyPath + ["\(key)[\(i)]"])
            guard item.mapping != nil else { throw f.error(nil, "expected a mapping") }
            out.append(f)
        }
        return out
    }

    /// A string or a list of strings.
    func strings(_ key: String) throws(LoadgenError) -> [String]? {
        guard let (value, _) = entry(key) else { return nil }
        if let sequence = value.sequence {
            var out: [String] = []
            for item in sequence {
                guard case .scalar(let s) = item else { throw error(key, "expected a list of strings") }
                out.append(s.string)
            }
            return out
        }
        guard case .scalar(let s) = value else { throw error(key, "expected a string or a list of strings") }
        return [s.string]
    }

    /// Yams' message on one line: "LINE:COLUMN: error: parser: ...", without the quoted source and caret.
    private static func withoutSnippet(_ text: String) -> String {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        let kept = lines.count > 2 && lines.last?.hasSuffix("^") == true ? lines.dropLast(2) : lines[...]
        return kept.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }.joined(separator: " ")
    }
}
