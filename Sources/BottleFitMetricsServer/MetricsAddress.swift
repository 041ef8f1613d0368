/// Where the metrics endpoint listens: `HOST:PORT` as given to `--metrics`.
///
/// HOST is an IPv4 address (`127.0.0.1`, `0.0.0.0` for every interface), a bracketed IPv6
/// address (`[::1]`), or a name resolved once at start (`localhost`); PORT is 0...65535, where
/// 0 lets the kernel choose a free port (the bound one is logged).
public struct MetricsAddress: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: UInt16

    public init(host: String, port: UInt16) {
        self.host = host
        self.port = port
    }

    /// Parses `HOST:PORT`; nil with `problem` set when the text is not one.
    public init?(_ text: String) {
        guard Self.problem(text) == nil else { return nil }
        let (host, port) = Self.split(text)!
        self.host = host
        self.port = UInt16(port)!
    }

    /// Why `text` is not a `HOST:PORT`, in words; nil when it is one.
    public static func problem(_ text: String) -> String? {
        guard let (host, port) = split(text) else {
            return "\(text) is not HOST:PORT (for example 127.0.0.1:9100, [::1]:9100, or 127.0.0.1:0 for any free port)"
        }
        guard !host.isEmpty else { return "\(text) has no host (use 127.0.0.1 for loopback, 0.0.0.0 for every interface)" }
        guard let p = Int(port), (0...65535).contains(p), port.allSatisfy(\.isASCII) else {
            return "\(text): the port must be a number 0...65535 (0 picks a free port)"
        }
        guard host.unicodeScalars.allSatisfy({ $0.isASCII && $0.value > 32 && $0 != "/" }) else {
            return "\(text): the host must be an address or a plain host name"
        }
        return nil
    }

    /// "[::1]:80" → ("::1", "80"); "127.0.0.1:80" → ("127.0.0.1", "80").
    private static func split(_ text: String) -> (String, String)? {
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else { return nil }
            let host = String(text[text.index(after: text.startIndex)..<close])
            let port = String(text[text.index(close, offsetBy: 2)...])
            return (host, port)
        }
        guard let colon = text.lastIndex(of: ":") else { return nil }
        let host = String(text[..<colon])
        // An unbracketed IPv6 address is ambiguous: "::1:9100" could be either.
        guard !host.contains(":") else { return nil }
        return (host, String(text[text.index(after: colon)...]))
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
