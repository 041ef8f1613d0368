import Foundation
import Testing

/// The import rules of docs/architecture.md ("Module graph"), read from the document's table and
/// checked against every `import` in Sources/: the table is the rule, so the two cannot drift.
@Suite struct ImportRulesTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    struct Rule {
        /// `Module`, `Module*` or `Module/File*.swift`.
        var scopes: [String]
        /// true: the files may import only `modules`; false: they must not import any of them.
        var only: Bool
        var modules: [String]
        var line: Int
    }

    /// Backticked items of a table cell.
    static func items(_ cell: Substring) -> [String] {
        cell.split(separator: "`", omittingEmptySubsequences: false).enumerated().filter { $0.offset % 2 == 1 }.map { String($0.element) }
    }

    static func rules() throws -> [Rule] {
        let text = try String(contentsOf: root.appendingPathComponent("docs/architecture.md"), encoding: .utf8)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard let start = lines.firstIndex(where: { $0.contains("<!-- import rules: begin") }),
              let end = lines.firstIndex(where: { $0.contains("<!-- import rules: end") }), start < end
        else { return [] }
        var out: [Rule] = []
        for i in (start + 1)..<end {
            let cells = lines[i].split(separator: "|", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard cells.count >= 4, cells[2].hasPrefix("only:") || cells[2].hasPrefix("not:") else { continue }
            out.append(Rule(scopes: items(Substring(cells[1])), only: cells[2].hasPrefix("only:"), modules: items(Substring(cells[2])), line: i + 1))
        }
        return out
    }

    static func matches(_ name: String, _ pattern: String) -> Bool {
        pattern.hasSuffix("*") ? name.hasPrefix(pattern.dropLast()) : name == pattern
    }

    /// Every Swift file under Sources/ as (module, path inside the module, imported modules).
    static func sources() throws -> [(module: String, file: String, imports: Set<String>)] {
        let sources = root.appendingPathComponent("Sources")
        var out: [(String, String, Set<String>)] = []
        for module in try FileManager.default.contentsOfDirectory(atPath: sources.path).sorted() {
            let dir = sources.appendingPathComponent(module)
            guard let walker = FileManager.default.enumerator(atPath: dir.path) else { continue }
            for case let file as String in walker where file.hasSuffix(".swift") {
                let text = try String(contentsOf: dir.appendingPathComponent(file), encoding: .utf8)
                var imports = Set<String>()
                for line in text.split(separator: "\n") {
                    var words = line.split(separator: " ").map(String.init)
                    while let first = words.first, first.hasPrefix("@") || ["public", "internal", "private", "package"].contains(first) { words.removeFirst() }
                    guard words.count >= 2, words[0] == "import" else { continue }
                    // `import struct Foundation.URL` names a declaration kind first.
                    let name = ["struct", "class", "enum", "protocol", "func", "var", "let", "typealias"].contains(words[1]) && words.count > 2 ? words[2] : words[1]
                    imports.insert(String(name.split(separator: ".")[0]))
                }
                out.append((module, file, imports))
            }
        }
        return out
    }

    @Test func everyImportFollowsTheRulesOfArchitectureMd() throws {
        let rules = try Self.rules()
        try #require(rules.count >= 8, "docs/architecture.md has no import-rules table between its markers")
        let files = try Self.sources()
        for rule in rules {
            for scope in rule.scopes {
                let parts = scope.split(separator: "/", maxSplits: 1).map(String.init)
                let inScope = files.filter { f in
                    Self.matches(f.module, parts[0]) && (parts.count == 1 || Self.matches(f.file, parts[1].replacingOccurrences(of: ".swift", with: "")) || Self.matches(f.file, parts[1]))
                }
                #expect(!inScope.isEmpty, "docs/architecture.md:\(rule.line): \(scope) names no file under Sources/ (renamed?)")
                for f in inScope {
                    for imported in f.imports.sorted() {
                        let listed = rule.modules.contains { Self.matches(imported, $0) }
                        // A module's own name never counts (scopes like `BottleFit*` include the module itself).
                        if imported == f.module { continue }
                        if rule.only ? !listed : listed {
                            Issue.record("Sources/\(f.module)/\(f.file) imports \(imported): docs/architecture.md:\(rule.line) says \(scope) \(rule.only ? "may import only" : "must not import") \(rule.modules.joined(separator: ", "))")
                        }
                    }
                }
            }
        }
    }

    /// The checker itself: a rule broken on purpose is found.
    @Test func aForbiddenImportIsFound() {
        #expect(Self.items("`BottleFitEngine`, `ZeroMQ*`") == ["BottleFitEngine", "ZeroMQ*"])
        #expect(Self.matches("BottleFitBroker", "BottleFit*") && !Self.matches("ZeroMQ", "BottleFit*"))
        #expect(Self.matches("BrokerScheduler+Time.swift", "BrokerScheduler*") && !Self.matches("Broker.swift", "BrokerScheduler*"))
    }
}
