import WOWKit

/// A host:port on a `MemoryNetwork`, the parsed form of `memory://<host>:<port>`. Hashing two integers
/// is what the per-packet path does instead of handling URI strings. Ordered by host, then port.
struct MemoryEndpoint: Hashable, Comparable {
    var host: Int
    var port: UInt16

    init(host: Int, port: UInt16) {
        self.host = host
        self.port = port
    }

    static func < (lhs: MemoryEndpoint, rhs: MemoryEndpoint) -> Bool { (lhs.host, lhs.port) < (rhs.host, rhs.port) }

    /// Parses `memory://<host>:<port>` (host a positive integer, port 0-65535); nil for anything else.
    init?(location uri: TransportURI) {
        let rest = uri.rest
        guard let colon = rest.lastIndex(of: ":"),
              let host = Int(rest[rest.startIndex..<colon]), host > 0,
              let port = UInt16(rest[rest.index(after: colon)...])
        else { return nil }
        self.init(host: host, port: port)
    }

    /// The URI, formatted; called when an edge or listener is made, never per packet.
    func uri(scheme: String) -> TransportURI {
        let text = scheme + "://" + String(host) + ":" + String(port)
        do {
            return try TransportURI(text)
        } catch {
            // Two decimal integers after a valid scheme always form a valid URI.
            preconditionFailure("memory endpoint formatted as an invalid URI '\(text)': \(error)")
        }
    }
}
