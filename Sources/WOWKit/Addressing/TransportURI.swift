/// Where a transport can reach a node: `scheme://rest`, e.g. `udp://198.18.0.1:4000` or `memory://7:1`.
///
/// The scheme selects the transport (the key of the `TransportRegistry`); the rest is the transport's own.
/// Only the form is checked here: printable ASCII, a lowercase scheme, at most 255 bytes in all.
public struct TransportURI: Hashable, Comparable, Sendable, CustomStringConvertible {
    public static let maximumLength = 255

    /// The whole text.
    public let text: String
    /// What comes before `://`.
    public let scheme: String
    /// What comes after `://`.
    public let rest: String

    /// Why a text is not a transport URI.
    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case empty
        case tooLong(Int)
        case notPrintableASCII
        case missingScheme(String)
        case badScheme(String)
        case missingLocation(String)

        public var description: String {
            switch self {
            case .empty: return "transport URI is empty"
            case .tooLong(let n): return "transport URI is \(n) bytes long; at most \(TransportURI.maximumLength) are allowed"
            case .notPrintableASCII: return "transport URI must be printable ASCII without spaces"
            case .missingScheme(let t): return "'\(t)' has no scheme: write it as scheme://location, e.g. udp://198.18.0.1:4000"
            case .badScheme(let s): return "'\(s)' is not a valid scheme: use lowercase letters, digits, '.', '+' or '-'"
            case .missingLocation(let t): return "'\(t)' has nothing after '://'"
            }
        }
    }

    /// Parses and checks `text`.
    public init(_ text: String) throws(ParseError) {
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty else { throw .empty }
        guard bytes.count <= TransportURI.maximumLength else { throw .tooLong(bytes.count) }
        guard bytes.allSatisfy({ $0 > 0x20 && $0 < 0x7f }) else { throw .notPrintableASCII }
        guard let separator = TransportURI.separatorIndex(bytes) else { throw .missingScheme(text) }
        let scheme = String(decoding: bytes[..<separator], as: UTF8.self)
        let rest = String(decoding: bytes[(separator + 3)...], as: UTF8.self)
        guard !scheme.isEmpty, scheme.utf8.allSatisfy(TransportURI.isSchemeByte) else { throw .badScheme(scheme) }
        guard !rest.isEmpty else { throw .missingLocation(text) }
        self.text = text
        self.scheme = scheme
        self.rest = rest
    }

    private static func separatorIndex(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 3 else { return nil }
        for index in 0...(bytes.count - 3)
        where bytes[index] == UInt8(ascii: ":") && bytes[index + 1] == UInt8(ascii: "/") && bytes[index + 2] == UInt8(ascii: "/") {
            return index
        }
        return nil
    }

    private static func isSchemeByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"): return true
        case UInt8(ascii: "."), UInt8(ascii: "+"), UInt8(ascii: "-"): return true
        default: return false
        }
    }

    /// Host and port when the rest has the form `host:port` (IPv6 hosts in brackets); nil otherwise.
    public var hostAndPort: (host: String, port: Int)? {
        guard let colon = rest.lastIndex(of: ":") else { return nil }
        var host = String(rest[rest.startIndex..<colon])
        guard let port = Int(rest[rest.index(after: colon)...]), (0...65535).contains(port), !host.isEmpty else {
            return nil
        }
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return (host, port)
    }

    public static func < (lhs: TransportURI, rhs: TransportURI) -> Bool { lhs.text < rhs.text }
    public var description: String { text }
}
