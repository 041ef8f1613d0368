import Foundation

/// The `security:` section of a topology (docs/security.md): `none`, or CURVE with a folder of key
/// files (`bottlefit keys generate --out DIR --name ...`) and the allow-list files.
///
/// Every process uses `KEYS/<its name>.key` as its secret key (broker.key, controller.key,
/// worker-1.key, camera-1.key, ...); clients find the servers' public keys in `KEYS/broker.pub`
/// and `KEYS/controller.pub`. Without the section, a topology whose endpoints are all loopback or
/// ipc:// runs in plain text, and one with any other address (another host, or every interface)
/// is refused: CURVE is the default off this machine, and plain text must be asked for.
public enum SecuritySpec: Decodable {
    case none
    case curve(CurveSpec)

    public struct CurveSpec: Decodable {
        public var keys: String
        public var allowCameras: String?
        public var allowWorkers: String?
        public var allowStats: String?

        public init(keys: String, allowCameras: String? = nil, allowWorkers: String? = nil, allowStats: String? = nil) {
            self.keys = keys
            self.allowCameras = allowCameras
            self.allowWorkers = allowWorkers
            self.allowStats = allowStats
        }

        enum CodingKeys: String, CodingKey, CaseIterable {
            case keys, allowCameras = "allow_cameras", allowWorkers = "allow_workers", allowStats = "allow_stats"
        }

        public init(from decoder: any Decoder) throws {
            try rejectUnknownKeys(decoder, allowed: CodingKeys.allCases.map(\.rawValue))
            let c = try decoder.container(keyedBy: CodingKeys.self)
            keys = try c.decode(String.self, forKey: .keys)
            allowCameras = try c.decodeIfPresent(String.self, forKey: .allowCameras)
            allowWorkers = try c.decodeIfPresent(String.self, forKey: .allowWorkers)
            allowStats = try c.decodeIfPresent(String.self, forKey: .allowStats)
        }
    }

    public init(from decoder: any Decoder) throws {
        if let text = try? decoder.singleValueContainer().decode(String.self) {
            try require(text == "none", decoder.codingPath, "security is `none` or a mapping with keys: DIR (CURVE), not \(text)")
            self = .none
            return
        }
        self = .curve(try CurveSpec(from: decoder))
    }

    /// Whether `endpoint` can only be reached from this machine: ipc://, or TCP on a loopback address.
    public static func isLocal(_ endpoint: String) -> Bool {
        if endpoint.hasPrefix("ipc://") || endpoint.hasPrefix("inproc://") { return true }
        guard endpoint.hasPrefix("tcp://") else { return false }
        let rest = endpoint.dropFirst(6)
        let host = rest.lastIndex(of: ":").map { String(rest[..<$0]) } ?? String(rest)
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        return bare == "localhost" || bare == "::1" || bare.hasPrefix("127.")
    }
}

/// The key file arguments of each role under CURVE, checked to exist before anything starts.
struct CurvePlan {
    let keys: URL
    let allowCameras: String
    let allowWorkers: String
    let allowStats: String

    init(_ spec: SecuritySpec.CurveSpec, base: URL) {
        let keys = (spec.keys.hasPrefix("/") ? URL(fileURLWithPath: spec.keys) : base.appendingPathComponent(spec.keys)).standardizedFileURL
        self.keys = keys
        func file(_ value: String?, default name: String) -> String {
            guard let value else { return keys.appendingPathComponent(name).standardizedFileURL.path }
            return (value.hasPrefix("/") ? URL(fileURLWithPath: value) : base.appendingPathComponent(value)).standardizedFileURL.path
        }
        allowCameras = file(spec.allowCameras, default: "cameras.allow")
        allowWorkers = file(spec.allowWorkers, default: "workers.allow")
        allowStats = file(spec.allowStats, default: "controller.pub")
    }

    func key(_ name: String) -> String { keys.appendingPathComponent(name).standardizedFileURL.path }

    func broker() -> BrokerLaunch.Curve {
        BrokerLaunch.Curve(key: key("broker.key"), allowCameras: allowCameras, allowWorkers: allowWorkers, allowStats: allowStats)
    }

    /// The CURVE files of a worker, the controller or a camera called `name`: its key, the broker's public key.
    func client(_ name: String) -> ClientCurve { ClientCurve(key: key("\(name).key"), brokerKey: key("broker.pub")) }

    var controllerPublicKey: String { key("controller.pub") }

    /// Every key and allow-list file the plan names must exist; the error says how to make the missing ones.
    func check(names: [String], path: String) throws(TopologyError) {
        let missingKeys = names.filter { n in
            !FileManager.default.fileExists(atPath: key("\(n).key")) || !FileManager.default.fileExists(atPath: key("\(n).pub"))
        }
        if !missingKeys.isEmpty {
            throw TopologyError("""
                \(path): security: no key pair for \(missingKeys.joined(separator: ", ")) in \(keys.path). \
                Make them with: bottlefit keys generate --out \(keys.path) \
                \(missingKeys.map { "--name \($0)" }.joined(separator: " "))
                """)
        }
        for (file, who) in [(allowCameras, "camera-*.pub"), (allowWorkers, "worker-*.pub"), (allowStats, "controller.pub")]
        where !FileManager.default.fileExists(atPath: file) {
            throw TopologyError("""
                \(path): security: no allow-list \(file). Make it from the public keys, e.g.: \
                cat \(keys.path)/\(who) > \(file)
                """)
        }
    }
}
