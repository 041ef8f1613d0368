import BottleFitCore
import Foundation
import ZeroMQ

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A problem with a key file, an allow-list or the security settings, as a sentence naming the file.
public struct SecurityError: Error, Equatable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// CURVE key files as `bottlefit keys generate` writes them (docs/security.md):
/// `NAME.key` holds the secret key and is readable by its owner only; `NAME.pub` holds the public
/// key and is a valid one-key allow-list, so allow-lists can be made with `cat *.pub`.
/// Both are text: `#` comments and one line with the 40 Z85 characters of the key.
public enum CurveKeyFile {
    /// Reads a secret key file and derives its public key. Refuses a file that its group or
    /// others may read (the error says which file and the `chmod` that fixes it).
    public static func readSecret(_ path: String) throws(SecurityError) -> ZMQCurveKeyPair {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw SecurityError("cannot read the secret key file \(path): \(String(cString: strerror(errno)))")
        }
        guard info.st_mode & S_IFMT == S_IFREG else { throw SecurityError("the secret key file \(path) is not a regular file") }
        let mode = info.st_mode & 0o777
        if mode & 0o077 != 0 {
            throw SecurityError("""
                the secret key file \(path) may be read by its group or others (mode \(String(mode, radix: 8))); \
                a secret key must be private: chmod 600 \(path)
                """)
        }
        let keys = try KeyListFile.read(path, what: "secret key")
        guard keys.count == 1, let key = keys.first else {
            throw SecurityError("\(path): a secret key file holds exactly one key (found \(keys.count))")
        }
        do {
            return try ZMQCurveKeyPair(secretKey: key.key)
        } catch {
            throw SecurityError("\(path):\(key.line): cannot derive the public key: \(error.message)")
        }
    }

    /// Reads a public key file (`NAME.pub`, or any file with exactly one key line).
    public static func readPublic(_ path: String) throws(SecurityError) -> String {
        let keys = try KeyListFile.read(path, what: "public key")
        guard keys.count == 1, let key = keys.first else {
            throw SecurityError("\(path): a public key file holds exactly one key (found \(keys.count))")
        }
        return key.key
    }

    /// Writes `NAME.key` (mode 0600) and `NAME.pub` into `directory`, refusing to replace a file
    /// that exists. Each file is written to a temporary name and renamed, so none is left half written.
    /// Returns the two paths.
    @discardableResult
    public static func create(_ keys: ZMQCurveKeyPair, name: String, directory: String) throws(SecurityError) -> (secret: String, public: String) {
        let base = URL(fileURLWithPath: directory)
        let secretPath = base.appendingPathComponent("\(name).key").path
        let publicPath = base.appendingPathComponent("\(name).pub").path
        for path in [secretPath, publicPath] where FileManager.default.fileExists(atPath: path) {
            throw SecurityError("\(path) exists; remove it first to replace the key of \(name) (rotation: docs/security.md)")
        }
        try writeAtomically(
            "# BottleFit CURVE secret key of \(name). Keep it private (mode 0600); its public key is \(name).pub.\n\(keys.secretKey)\n",
            to: secretPath, mode: 0o600)
        try writeAtomically("\(keys.publicKey)  # \(name)\n", to: publicPath, mode: 0o644)
        return (secretPath, publicPath)
    }

    private static func writeAtomically(_ text: String, to path: String, mode: mode_t) throws(SecurityError) {
        let temporary = path + ".tmp-\(getpid())"
        // O_EXCL with the final mode from the start: the secret is never readable by others, even briefly.
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL, mode)
        guard fd >= 0 else { throw SecurityError("cannot create \(temporary): \(String(cString: strerror(errno)))") }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        let syncFailed = fsync(fd) != 0
        close(fd)
        guard written == bytes.count, !syncFailed, rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw SecurityError("cannot write \(path): \(reason)")
        }
    }
}

/// The line format shared by key files and allow-lists: blank lines and `#` comments are
/// skipped; every other line is a 40-character Z85 key, optionally followed by `# a comment`.
public enum KeyListFile {
    /// One key and the line it was on (1-based).
    public struct Entry: Sendable, Equatable {
        public var key: String
        public var line: Int
    }

    /// Reads and checks `path`; the first bad line is an error with its number.
    public static func read(_ path: String, what: String) throws(SecurityError) -> [Entry] {
        let text: String
        do { text = try FileBytes.text(of: path) } catch {
            throw SecurityError("cannot read the \(what) file \(path): \(error.reason)")
        }
        return try parse(text, path: path)
    }

    /// Parses the text of a key list; `path` names it in errors.
    public static func parse(_ text: String, path: String) throws(SecurityError) -> [Entry] {
        var entries: [Entry] = []
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            // '#' is a Z85 character too: a comment is a line that starts with it, or what
            // follows the key after white space.
            let fields = raw.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
            guard let first = fields.first, !first.hasPrefix("#") else { continue }
            let content = String(first)
            guard Z85.decodeKey(content) != nil, fields.count == 1 || fields[1].hasPrefix("#") else {
                let text = raw.trimmingCharacters(in: .whitespaces)
                let shown = text.count > 48 ? String(text.prefix(45)) + "..." : text
                throw SecurityError("""
                    \(path):\(index + 1): "\(shown)" is not a CURVE key (40 Z85 characters, as `bottlefit keys generate` \
                    writes them; a comment after the key needs white space before its #)
                    """)
            }
            entries.append(Entry(key: content, line: index + 1))
        }
        return entries
    }
}
