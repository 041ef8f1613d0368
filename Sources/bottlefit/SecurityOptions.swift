import ArgumentParser
import BottleFitCore
import BottleFitDevice
import BottleFitSecurity
import Dispatch
import Foundation
import ZeroMQ

/// Help texts and file loading shared by the roles' CURVE options (docs/security.md).
enum CurveOptionHelp {
    static let curveKey = ArgumentHelp(
        "This process's CURVE secret key file (NAME.key from `bottlefit keys generate`, mode 0600). "
            + "With it, every socket of the role uses CURVE; without it, none does.", valueName: "file")
    static let brokerKey = ArgumentHelp("The broker's public key file (broker.pub), with --curve-key.", valueName: "file")
    static let controllerKey = ArgumentHelp("The controller's public key file (controller.pub), with --curve-key and --directives.", valueName: "file")
    static func allowList(_ who: String) -> ArgumentHelp {
        ArgumentHelp("Allow-list of \(who): one public key per line (cat their .pub files), # comments; re-read on SIGHUP.", valueName: "file")
    }

    /// Throws a usage error naming the options that must come with --curve-key (or without it).
    static func requireTogether(_ curveKey: String?, _ others: [(flag: String, value: String?)]) throws {
        let given = others.filter { $0.value != nil }.map(\.flag)
        if curveKey == nil, !given.isEmpty {
            throw ValidationError("\(given.joined(separator: ", ")) need --curve-key (CURVE is on only with this process's secret key)")
        }
        let missing = others.filter { $0.value == nil }.map(\.flag)
        if curveKey != nil, !missing.isEmpty {
            throw ValidationError("--curve-key needs \(missing.joined(separator: " and ")) as well")
        }
    }

    /// A camera's CURVE settings from its key files (`bottlefit device`, `bottlefit loadgen`); nil without --curve-key.
    static func cameraCurve(curveKey: String?, brokerKey: String?, controllerKey: String?) throws -> CameraCurve? {
        guard let curveKey, let brokerKey else { return nil }
        return try loading { () throws(SecurityError) in
            try CameraCurve(
                keys: CurveKeyFile.readSecret(curveKey), brokerKey: CurveKeyFile.readPublic(brokerKey),
                controllerKey: controllerKey.map { k throws(SecurityError) in try CurveKeyFile.readPublic(k) })
        }
    }

    /// Runs `body`, turning a key-file problem into a usage error (exit 64) that names the file.
    static func loading<T>(_ body: () throws(SecurityError) -> T) throws -> T {
        do { return try body() } catch { throw ValidationError(error.description) }
    }
}

/// SIGHUP calls `handler` (on a dispatch queue) instead of ending the process: the broker and the
/// controller re-read their allow-lists. Keep the returned source alive; let the handler hold its
/// role weakly, so that it never keeps the role's ZeroMQ context alive after the command ends.
enum ReloadSignal {
    static func install(_ handler: @escaping @Sendable () -> Void) -> any DispatchSourceSignal {
        signal(SIGHUP, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
        source.setEventHandler(handler: handler)
        source.resume()
        return source
    }
}

/// `bottlefit keys`: CURVE key files for the fleet.
struct KeysCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "Make CURVE key pairs for the broker, controller, workers and cameras (docs/security.md).",
        subcommands: [KeysGenerateCommand.self])
}

/// `bottlefit keys generate --out DIR [--name NAME ...]`.
struct KeysGenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Write a CURVE key pair per --name: NAME.key (secret, mode 0600) and NAME.pub (public).",
        discussion: """
            Each pair comes from libzmq's zmq_curve_keypair. NAME.key holds the secret key in Z85 \
            text and is readable by its owner only; every role refuses a secret key file its group \
            or others may read. NAME.pub holds the public key on one line and is itself a valid \
            allow-list: make the broker's with, e.g., cat keys/camera-*.pub > keys/cameras.allow. \
            Existing files are never replaced (remove them first to rotate a key, docs/security.md). \
            DIR is created (mode 0700) when missing. Default --name: bottlefit.
            Example: bottlefit keys generate --out keys --name broker --name controller --name worker-1 --name camera-1
            """)

    @Option(help: "Folder to write the key files into.") var out: String
    @Option(help: "Name of a key pair (NAME.key, NAME.pub); repeatable.") var name: [String] = []

    var names: [String] { name.isEmpty ? ["bottlefit"] : name }

    func validate() throws {
        for n in names {
            guard !n.isEmpty, n.utf8.count <= 128, !n.contains("/"), !n.hasPrefix("."), n.allSatisfy({ !$0.isWhitespace }) else {
                throw ValidationError("--name \"\(n)\": a key name is 1 to 128 characters, no spaces or /, not starting with a dot")
            }
        }
        if let dup = Dictionary(grouping: names, by: { $0 }).first(where: { $0.value.count > 1 })?.key {
            throw ValidationError("--name \(dup) is given twice")
        }
    }

    func run() throws {
        do { try CurveSupport.require() } catch { throw CommandError(error.description) }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: out, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw CommandError("--out \(out) exists and is not a folder") }
        } else {
            do {
                try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            } catch {
                throw CommandError("cannot create the folder \(out): \(FileBytes.reason(error))")
            }
        }
        // Checked for every name first, so a clash writes nothing rather than half the pairs.
        for n in names {
            for file in ["\(n).key", "\(n).pub"] {
                let path = URL(fileURLWithPath: out).appendingPathComponent(file).path
                if FileManager.default.fileExists(atPath: path) {
                    throw CommandError("\(path) exists; remove it first to replace the key of \(n) (rotation: docs/security.md)")
                }
            }
        }
        for n in names {
            let pair: ZMQCurveKeyPair
            do { pair = try ZMQCurveKeyPair.generate() } catch { throw CommandError("cannot make a key pair: \(error)") }
            let paths: (secret: String, public: String)
            do { paths = try CurveKeyFile.create(pair, name: n, directory: out) } catch { throw CommandError(error.description) }
            print("\(n): public \(pair.publicKey)  secret key in \(paths.secret), public key in \(paths.public)")
        }
    }
}
