import Foundation
import NIOCore

/// Which outbound edges of a stream transport go through which proxy: the `proxy` setting if given, else (for
/// `tls`) the `HTTPS_PROXY` convention of curl, Go and Python.
///
/// - `proxy: "http://..."` sends every outbound edge through that proxy, loopback peers included.
/// - `proxy: none`, or no `proxy` for `tcp`, connects directly.
/// - No `proxy` for `tls`: `HTTPS_PROXY`, else `https_proxy` (an empty value counts as unset) names the proxy;
///   `NO_PROXY` / `no_proxy` lists peers to reach directly: `*` (all), IP addresses (`198.18.0.5`,
///   `[2001:db8::5]`, a `:port` is ignored) and networks (`198.18.0.0/15`); names and domains are skipped,
///   since peers are IP literals. Loopback peers are always reached directly this way (as Go does), so a
///   node on a desktop with a proxy still reaches its own host.
///
/// A value made once, when the listener is made; `proxy(for:)` is asked once per outbound edge.
struct ProxyPolicy: Sendable {
    /// The proxy, if any edge uses one.
    let proxy: HTTPProxy?
    /// Where the proxy came from, for the log: `settings`, or the environment variable's name.
    let source: String
    /// Peers reached directly although there is a proxy.
    private let exemptions: [Exemption]
    /// Whether loopback peers are reached directly (the environment's proxy only).
    private let exemptsLoopback: Bool

    /// Every edge directly.
    static let direct = ProxyPolicy(proxy: nil, source: "none", exemptions: [], exemptsLoopback: false)

    private init(proxy: HTTPProxy?, source: String, exemptions: [Exemption], exemptsLoopback: Bool) {
        self.proxy = proxy
        self.source = source
        self.exemptions = exemptions
        self.exemptsLoopback = exemptsLoopback
    }

    /// The policy for `setting`; with `.unset` and `followsEnvironment`, from `environment`'s `HTTPS_PROXY`
    /// and `NO_PROXY`. Throws `.badEnvironment` if `HTTPS_PROXY` is not a proxy URL.
    init(setting: ProxySetting, followsEnvironment: Bool, environment: [String: String]) throws(HTTPProxyError) {
        switch setting {
        case .direct:
            self = .direct
        case .http(let proxy):
            self.init(proxy: proxy, source: "settings", exemptions: [], exemptsLoopback: false)
        case .unset:
            guard followsEnvironment, let found = Self.firstSet(["HTTPS_PROXY", "https_proxy"], in: environment) else {
                self = .direct
                return
            }
            let proxy: HTTPProxy
            do {
                proxy = try HTTPProxy(parsing: found.value)
            } catch {
                throw .badEnvironment(variable: found.variable, reason: error.description)
            }
            let exemptions = Self.firstSet(["NO_PROXY", "no_proxy"], in: environment).map { Self.exemptions($0.value) } ?? []
            self.init(proxy: proxy, source: found.variable, exemptions: exemptions, exemptsLoopback: true)
        }
    }

    /// The proxy to dial `target` through; nil to connect directly.
    func proxy(for target: IPEndpoint) -> HTTPProxy? {
        guard let proxy else { return nil }
        if exemptsLoopback && target.isLoopback { return nil }
        let bytes = target.addressBytes
        if exemptions.contains(where: { $0.matches(bytes) }) { return nil }
        return proxy
    }

    // MARK: NO_PROXY

    /// One entry of `NO_PROXY` that can match an IP literal.
    enum Exemption: Equatable, Sendable {
        /// `*`: every peer.
        case all
        /// An address (prefix length 32 or 128) or a network.
        case network([UInt8], prefixLength: Int)

        func matches(_ address: [UInt8]) -> Bool {
            switch self {
            case .all:
                return true
            case .network(let network, let prefixLength):
                guard network.count == address.count else { return false }
                let whole = prefixLength / 8
                guard network.prefix(whole) == address.prefix(whole) else { return false }
                let remaining = prefixLength % 8
                guard remaining > 0 else { return true }
                let mask = UInt8(0xff) << (8 - remaining)
                return network[whole] & mask == address[whole] & mask
            }
        }
    }

    /// The entries of a `NO_PROXY` value that can match IP literals (names and domains are left out).
    static func exemptions(_ value: String) -> [Exemption] {
        value.split(separator: ",").compactMap { item -> Exemption? in
            var entry = item.trimmingCharacters(in: .whitespaces)
            if entry == "*" { return .all }
            var prefixLength: Int?
            if let slash = entry.firstIndex(of: "/") {
                prefixLength = Int(entry[entry.index(after: slash)...])
                guard prefixLength != nil else { return nil }
                entry = String(entry[..<slash])
            }
            if entry.hasPrefix("["), let close = entry.firstIndex(of: "]") {
                entry = String(entry[entry.index(after: entry.startIndex)..<close])
            } else if entry.filter({ $0 == ":" }).count == 1, let colon = entry.firstIndex(of: ":") {
                entry = String(entry[..<colon])
            }
            guard let address = (try? SocketAddress(ipAddress: entry, port: 0)).map(IPEndpoint.init) else { return nil }
            let bytes = address.addressBytes
            let length = prefixLength ?? bytes.count * 8
            guard !bytes.isEmpty, (0...bytes.count * 8).contains(length) else { return nil }
            return .network(bytes, prefixLength: length)
        }
    }

    /// The first of `names` set to something other than blanks, and its value.
    private static func firstSet(_ names: [String], in environment: [String: String]) -> (variable: String, value: String)? {
        for name in names {
            if let value = environment[name], !value.trimmingCharacters(in: .whitespaces).isEmpty { return (name, value) }
        }
        return nil
    }
}

extension IPEndpoint {
    /// The address's bytes in network order: 4 for IPv4 (an IPv4-mapped IPv6 address counts as IPv4), 16 for
    /// IPv6; empty for anything else.
    var addressBytes: [UInt8] {
        if let v4 = unmappedIPv4 { return v4.addressBytes }
        switch address {
        case .v4(let v4): return withUnsafeBytes(of: v4.address.sin_addr) { Array($0) }
        case .v6(let v6): return withUnsafeBytes(of: v6.address.sin6_addr) { Array($0) }
        default: return []
        }
    }
}
