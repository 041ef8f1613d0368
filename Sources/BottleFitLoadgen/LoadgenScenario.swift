import BottleFitCore
import Foundation
import Yams

/// A scenario file: the settings of `LoadgenOption.all` as YAML keys (the flag without `--`, with
/// underscores), group keys at the top level as defaults and under `groups:` per group
/// (docs/loadgen.md, "Scenarios"). Errors name the file, line and key, like topology errors.
public enum LoadgenScenario {
    /// Reads `path` into settings; values are checked later by `LoadgenSettings.resolve`.
    public static func load(path: String) throws(LoadgenError) -> LoadgenSettings {
        let text: String
        do { text = try FileBytes.text(of: path) } catch { throw LoadgenError("\(error.description) (the scenario)") }
        var settings = try parse(text, file: path)
        settings.baseDirectory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        return settings
    }

    public static func parse(_ text: String, file: String) throws(LoadgenError) -> LoadgenSettings {
        let root = try YAMLFields.document(text, file: file)
        try root.rejectUnknownKeys(LoadgenOption.keys + ["groups", "description"])
        var settings = LoadgenSettings()
        settings.top = try read(root, keys: LoadgenOption.keys)
        if let groups = try root.mappings("groups") {
            guard !groups.isEmpty else { throw root.error("groups", "expected at least one group") }
            for group in groups {
                try group.rejectUnknownKeys(LoadgenOption.groupKeys)
                settings.groups.append(try read(group, keys: LoadgenOption.groupKeys))
            }
        }
        return settings
    }

    private static func read(_ fields: YAMLFields, keys: [String]) throws(LoadgenError) -> [String: LoadgenSetting] {
        var out: [String: LoadgenSetting] = [:]
        for key in keys where fields.has(key) {
            let option = LoadgenOption.all.first { $0.key == key }!
            let values: [String]
            if option.repeatable {
                values = try fields.strings(key) ?? []
            } else {
                guard let v = try fields.string(key) else { continue }
                values = [v]
            }
            // The origin is "FILE:LINE: path.key"; `resolve` appends the reason.
            let located = fields.error(key, "").description
            out[key] = LoadgenSetting(values, origin: String(located.dropLast(2)))
        }
        return out
    }
}
