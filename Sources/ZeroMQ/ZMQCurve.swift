import CBottleFitZMQ

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Z85, the text encoding of CURVE keys (ZeroMQ RFC 32): 5 characters per 4 bytes, so a 32-byte
/// key is 40 printable characters.
public enum Z85 {
    /// The 32 bytes a 40-character Z85 key stands for, or nil when `text` is not one.
    /// The corresponding C function is `zmq_z85_decode`.
    public static func decodeKey(_ text: String) -> [UInt8]? {
        let utf8 = Array(text.utf8)
        // zmq_z85_decode checks the alphabet but reads up to the NUL: the length is checked here.
        guard utf8.count == 40 else { return nil }
        var key = [UInt8](repeating: 0, count: 32)
        let ok = text.withCString { string in key.withUnsafeMutableBufferPointer { zmq_z85_decode($0.baseAddress, string) != nil } }
        return ok ? key : nil
    }

    /// The 40 Z85 characters of a 32-byte key. The corresponding C function is `zmq_z85_encode`.
    public static func encodeKey(_ key: [UInt8]) -> String? {
        guard key.count == 32 else { return nil }
        var text = [CChar](repeating: 0, count: 41)
        guard key.withUnsafeBufferPointer({ zmq_z85_encode(&text, $0.baseAddress, 32) }) != nil else { return nil }
        return String(decoding: text.prefix(40).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

extension ZMQCurveKeyPair {
    /// The pair whose secret key is `secretKey` (40 Z85 characters); the public key is derived.
    /// Fails with `EINVAL` when the text is not a Z85 key, `ENOTSUP` without CURVE.
    /// The corresponding C function is `zmq_curve_public`.
    public init(secretKey: String) throws(ZMQError) {
        guard Z85.decodeKey(secretKey) != nil else {
            throw ZMQError(errno: EINVAL, operation: "zmq_curve_public", message: "not a 40-character Z85 key")
        }
        var publicKey = [CChar](repeating: 0, count: 41)
        if zmq_curve_public(&publicKey, secretKey) != 0 { throw ZMQError.last("zmq_curve_public") }
        self.init(
            publicKey: String(decoding: publicKey.prefix(40).map { UInt8(bitPattern: $0) }, as: UTF8.self),
            secretKey: secretKey)
    }
}

extension ZMQSocket {
    /// Makes this socket a CURVE server with `keys`; clients must know `keys.publicKey`.
    /// `zapDomain` names the ZAP handler registration that decides which clients are let in.
    /// Set before `bind`: options apply to connections made afterwards.
    public func makeCurveServer(_ keys: ZMQCurveKeyPair, zapDomain: String) throws(ZMQError) {
        try setOption(.curveServer, true)
        try setOption(.curveSecretKey, keys.secretKey)
        try setOption(.zapDomain, zapDomain)
    }

    /// Makes this socket a CURVE client with its own `keys`, talking to the server whose public
    /// key is `serverKey`. Set before `connect`.
    public func makeCurveClient(_ keys: ZMQCurveKeyPair, serverKey: String) throws(ZMQError) {
        try setOption(.curveServerKey, serverKey)
        try setOption(.curvePublicKey, keys.publicKey)
        try setOption(.curveSecretKey, keys.secretKey)
    }
}
