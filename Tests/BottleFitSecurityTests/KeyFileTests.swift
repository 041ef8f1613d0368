import BottleFitSecurity
import Foundation
import Testing
import ZeroMQ
import BottleFitTestSupport

/// Key files and allow-lists: what `keys generate` writes reads back, and every bad file is a
/// sentence naming the file (and the line, or the chmod that fixes it).
@Suite(.enabled(if: ZMQContext.has("curve")), .blocking)
struct KeyFileTests {
    @Test func generatedFilesReadBackWithTheSecretPrivate() throws {
        let dir = try temporaryFolder()
        let pair = try ZMQCurveKeyPair.generate()
        let (secret, pub) = try CurveKeyFile.create(pair, name: "camera-1", directory: dir)
        #expect(try permissions(secret) == 0o600)
        #expect(try CurveKeyFile.readSecret(secret) == pair)
        #expect(try CurveKeyFile.readPublic(pub) == pair.publicKey)
        // A .pub file is a one-key allow-list, so `cat *.pub > cameras.allow` makes one.
        #expect(try KeyListFile.read(pub, what: "allow-list").map(\.key) == [pair.publicKey])
        // Never overwritten: replacing a key is a rotation, done on purpose.
        #expect(throws: SecurityError.self) { try CurveKeyFile.create(pair, name: "camera-1", directory: dir) }
    }

    @Test func aSecretKeyOthersMayReadIsRefusedWithTheFix() throws {
        let dir = try temporaryFolder()
        let (secret, _) = try CurveKeyFile.create(try ZMQCurveKeyPair.generate(), name: "broker", directory: dir)
        chmod(secret, 0o640)
        let error = try #require(throws: SecurityError.self) { try CurveKeyFile.readSecret(secret) }
        #expect(error.description.contains(secret))
        #expect(error.description.contains("chmod 600 \(secret)"))
        chmod(secret, 0o604)
        #expect(throws: SecurityError.self) { try CurveKeyFile.readSecret(secret) }
        chmod(secret, 0o400)
        #expect(throws: Never.self) { try CurveKeyFile.readSecret(secret) }
    }

    @Test func allowListsTakeCommentsAndNameTheBadLine() throws {
        let a = try ZMQCurveKeyPair.generate().publicKey, b = try ZMQCurveKeyPair.generate().publicKey
        let text = "# cameras of hall 2\n\n\(a)  # camera-1\n   \(b)\n"
        #expect(try KeyListFile.parse(text, path: "cams.allow").map(\.key) == [a, b])
        #expect(try KeyListFile.parse(text, path: "cams.allow").map(\.line) == [3, 4])
        let bad = "\(a)\n\(b.dropLast())\n"
        let error = try #require(throws: SecurityError.self) { try KeyListFile.parse(bad, path: "cams.allow") }
        #expect(error.description.hasPrefix("cams.allow:2: "))
        let twoOnALine = "\(a) \(b)\n"
        #expect(throws: SecurityError.self) { try KeyListFile.parse(twoOnALine, path: "x") }
        let missing = try #require(throws: SecurityError.self) { try KeyListFile.read("/nonexistent/x.allow", what: "allow-list") }
        #expect(missing.description.contains("/nonexistent/x.allow"))
    }

    @Test func z85RoundTripsAndRejectsWrongLengths() throws {
        let pair = try ZMQCurveKeyPair.generate()
        let bytes = try #require(Z85.decodeKey(pair.publicKey))
        #expect(Z85.encodeKey(bytes) == pair.publicKey)
        #expect(Z85.decodeKey(String(pair.publicKey.dropLast(5))) == nil)
        #expect(Z85.decodeKey(pair.publicKey + "abcde") == nil)
        #expect(Z85.decodeKey(String(repeating: "\"", count: 40)) == nil)
        #expect(try ZMQCurveKeyPair(secretKey: pair.secretKey) == pair)
    }
}

func temporaryFolder() throws -> String {
    let path = "/tmp/bfsec-\(UUID().uuidString.prefix(8))"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

func permissions(_ path: String) throws -> Int {
    let attributes = try FileManager.default.attributesOfItem(atPath: path)
    return (attributes[.posixPermissions] as? Int) ?? -1
}
