import NIOCore
import NIOPosix
import WOWKit

/// An IP address and port as the socket transports (`udp`, `tcp`, `tls`) write them: `198.18.0.1:4000`, or
/// `[2001:db8::1]:4000` for IPv6 (brackets required). Only IP literals are accepted: the transports do no DNS
/// lookups (yet). Public so that other socket options (`wow run --metrics`) take endpoints the same way.
///
/// Parsing and formatting happen when edges are made and URIs listed, never per packet.
public struct IPEndpoint: Hashable, Sendable, CustomStringConvertible {
    /// The socket address to connect to or bind.
    public let address: SocketAddress

    init(_ address: SocketAddress) { self.address = address }

    /// Parses `host:port` or `[v6]:port`; the error says what is wrong.
    public init(parsing text: String) throws(IPEndpointError) {
        let host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else {
                throw .init(text: text, reason: "an IPv6 address needs a closing ']', as in [::1]:4000")
            }
            host = text[text.index(after: text.startIndex)..<close]
            let after = text[text.index(after: close)...]
            guard after.hasPrefix(":") else {
                throw .init(text: text, reason: "expected ':port' after ']', as in [::1]:4000")
            }
            portText = after.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":") else {
                throw .init(text: text, reason: "expected host:port, as in 198.18.0.1:4000")
            }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
            if host.contains(":") {
                throw .init(text: text, reason: "write an IPv6 address in brackets, as in [::1]:4000")
            }
        }
        guard !host.isEmpty else { throw .init(text: text, reason: "the host is empty") }
        guard let port = Int(portText), (0...65535).contains(port) else {
            throw .init(text: text, reason: "the port must be a number 0-65535, got '\(portText)'")
        }
        do {
            address = try SocketAddress(ipAddress: String(host), port: port)
        } catch {
            throw .init(text: text, reason: "'\(host)' is not an IPv4 or IPv6 address (host names are not supported: WOW's socket transports do no DNS lookups)")
        }
    }

    /// The endpoint of a `<scheme>://host:port` URI; throws `.wrongScheme` or `.badLocation` with the reason.
    init(uri: TransportURI, scheme: String) throws(EdgeError) {
        guard uri.scheme == scheme else {
            throw .wrongScheme(expected: scheme, got: uri.scheme)
        }
        do {
            try self.init(parsing: uri.rest)
        } catch {
            throw .badLocation(uri, reason: error.reason)
        }
        guard port != 0 else { throw .badLocation(uri, reason: "port 0 cannot be connected to") }
    }

    public var port: Int { address.port ?? 0 }

    var isIPv6: Bool {
        if case .v6 = address { return true }
        return false
    }

    /// Whether the host is the wildcard (0.0.0.0 or ::).
    var isWildcard: Bool {
        switch address {
        case .v4(let v4): return v4.address.sin_addr.s_addr == 0
        case .v6(let v6): return withUnsafeBytes(of: v6.address.sin6_addr) { $0.allSatisfy { $0 == 0 } }
        default: return false
        }
    }

    /// Whether the host is a loopback address (127/8 or ::1).
    public var isLoopback: Bool {
        switch address {
        case .v4(let v4): return UInt32(bigEndian: v4.address.sin_addr.s_addr) >> 24 == 127
        case .v6(let v6):
            return withUnsafeBytes(of: v6.address.sin6_addr) { bytes in
                bytes.prefix(15).allSatisfy { $0 == 0 } && bytes[15] == 1
            }
        default: return false
        }
    }

    /// Where a connection from a listener bound to this endpoint to `target` should leave from: the bound
    /// address (port 0) when the listener is bound to one, so that peers see the node where it listens. On a
    /// host with several addresses (several nodes on one link, each on its own) the kernel would otherwise
    /// pick its first address, and peers would take the node for one behind a NAT. Nil for a wildcard
    /// listener, or when `target` is of another family or scope (loopback or not).
    func outboundSource(toward target: IPEndpoint) -> SocketAddress? {
        guard !isWildcard, isIPv6 == target.isIPv6, isLoopback == target.isLoopback, let host = address.ipAddress else {
            return nil
        }
        return try? SocketAddress(ipAddress: host, port: 0)
    }

    /// Whether the host is an IPv6 link-local address (fe80::/10), useless to peers without a zone.
    var isLinkLocalIPv6: Bool {
        guard case .v6(let v6) = address else { return false }
        return withUnsafeBytes(of: v6.address.sin6_addr) { $0[0] == 0xfe && $0[1] & 0xc0 == 0x80 }
    }

    /// For an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, as a dual-stack socket sees IPv4 peers), the IPv4
    /// endpoint; nil otherwise.
    var unmappedIPv4: IPEndpoint? {
        guard case .v6(let v6) = address else { return nil }
        let bytes = withUnsafeBytes(of: v6.address.sin6_addr) { Array($0) }
        guard bytes.prefix(10).allSatisfy({ $0 == 0 }), bytes[10] == 0xff, bytes[11] == 0xff else { return nil }
        let host = "\(bytes[12]).\(bytes[13]).\(bytes[14]).\(bytes[15])"
        return (try? SocketAddress(ipAddress: host, port: port)).map(IPEndpoint.init)
    }

    /// This IPv4 endpoint as an IPv4-mapped IPv6 one, for sending from an IPv6 (dual-stack) socket.
    var mappedIPv6: IPEndpoint? {
        guard case .v4 = address, let host = address.ipAddress else { return nil }
        return (try? SocketAddress(ipAddress: "::ffff:" + host, port: port)).map(IPEndpoint.init)
    }

    /// `198.18.0.1:4000` or `[::1]:4000`; IPv4-mapped addresses in their IPv4 form.
    public var description: String {
        if let v4 = unmappedIPv4 { return v4.description }
        let host = address.ipAddress ?? "?"
        return isIPv6 ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    /// `<scheme>://198.18.0.1:4000` or `<scheme>://[::1]:4000`; nil only if `scheme` is not a valid scheme.
    func uri(scheme: String) -> TransportURI? {
        try? TransportURI("\(scheme)://\(description)")
    }
}

/// Why a `host:port` text is not an IP endpoint.
public struct IPEndpointError: Error, Sendable {
    /// The text as given.
    public var text: String
    /// What is wrong with it, with an example of a right one.
    public var reason: String
}

extension IPEndpoint {
    /// The endpoints a socket bound here can be reached at: itself if specific; for a wildcard, every interface
    /// address of its family (not loopback or IPv6 link-local), or loopback if there is no other. (Loopback
    /// is not advertised beside real addresses: a peer on another host would reach itself there, and one on
    /// this host can use the real address.) Throws only if the interfaces cannot be listed (the loopback
    /// endpoint is then the caller's fallback).
    func reachableEndpoints() throws -> [IPEndpoint] {
        guard isWildcard, let port = address.port else { return [self] }
        var endpoints: [IPEndpoint] = []
        for device in try System.enumerateDevices() {
            guard let candidate = device.address, candidate.protocol == address.protocol,
                  let host = candidate.ipAddress,
                  let endpoint = (try? SocketAddress(ipAddress: host, port: port)).map(IPEndpoint.init),
                  !endpoint.isLoopback, !endpoint.isWildcard, !endpoint.isLinkLocalIPv6, endpoint.unmappedIPv4 == nil,
                  !endpoints.contains(endpoint)
            else { continue }
            endpoints.append(endpoint)
        }
        return endpoints.isEmpty ? (loopbackEndpoint.map { [$0] } ?? []) : endpoints
    }

    /// Loopback (127.0.0.1 or ::1) at this endpoint's port.
    var loopbackEndpoint: IPEndpoint? {
        guard let port = address.port else { return nil }
        return (try? SocketAddress(ipAddress: isIPv6 ? "::1" : "127.0.0.1", port: port)).map(IPEndpoint.init)
    }
}

extension IPEndpoint {
    /// A wildcard-bound transport's address URIs after the host's interfaces were listed again (`fresh`), or
    /// nil when they did not change into a usable set: `hosts` (the node's own virtual IPs) left out on both
    /// sides, and loopback alone (a cable being re-plugged) kept waiting with `old`.
    static func changedAddressURIs(_ fresh: [TransportURI], from old: [TransportURI], scheme: String,
                                   ignoring hosts: Set<String>) -> [TransportURI]? {
        let isUnderlay = { (uri: TransportURI) in !hosts.contains(uri.hostAndPort?.host ?? "") }
        let usable = fresh.filter(isUnderlay)
        guard usable != old.filter(isUnderlay),
              usable.contains(where: { (try? IPEndpoint(uri: $0, scheme: scheme)).map { !$0.isLoopback } ?? false })
        else { return nil }
        return usable
    }
}
