/// A network on the virtual network side: the range the TUN device routes into the overlay, IPv4
/// (`100.64.0.0/10` by default) or IPv6 (`fd77:6f77::/48` by default).
public struct VirtualPrefix: Hashable, Sendable, CustomStringConvertible {
    /// The network address (host bits zero).
    public let network: VirtualIP
    /// Prefix length: 1 to 32 for IPv4, 1 to 128 for IPv6.
    public let length: Int

    /// WOW's IPv4 default: the shared address space of RFC 6598, which no public host uses.
    public static let `default` = VirtualPrefix(network: VirtualIP(0x6440_0000), length: 10)!
    /// WOW's IPv6 default: a unique local /48 (RFC 4193; the global id spells "wow" in ASCII).
    public static let defaultIPv6 = VirtualPrefix("fd77:6f77::/48")!

    /// Nil when `length` does not fit the family or `network` has host bits set.
    public init?(network: VirtualIP, length: Int) {
        let bits = network.family == .v4 ? 32 : 128
        guard (1...bits).contains(length) else { return nil }
        self.network = network
        self.length = length
        guard network.high & ~maskHigh == 0, network.low & ~maskLow == 0 else { return nil }
    }

    /// Parses `address/length` (`100.64.0.0/10`, `fd77:6f77::/48`); nil for anything else (including host
    /// bits set, e.g. `100.64.0.1/10`).
    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let ip = VirtualIP(String(parts[0])), (1...3).contains(parts[1].count),
              parts[1].allSatisfy(\.isASCII), let length = Int(parts[1]) else { return nil }
        self.init(network: ip, length: length)
    }

    public var family: VirtualIP.Family { network.family }

    /// The mask over the 128-bit form (an IPv4 prefix also covers the 96 bits of the mapped form).
    private var maskHigh: UInt64 { VirtualPrefix.mask(bits: bits128 , from: 0) }
    private var maskLow: UInt64 { VirtualPrefix.mask(bits: bits128, from: 64) }
    private var bits128: Int { family == .v4 ? 96 + length : length }

    private static func mask(bits: Int, from start: Int) -> UInt64 {
        let covered = min(max(bits - start, 0), 64)
        return covered == 0 ? 0 : UInt64.max << UInt64(64 - covered)
    }

    /// The IPv4 netmask (`255.192.0.0` for /10); nil for IPv6.
    public var netmask: VirtualIP? { family == .v4 ? VirtualIP(UInt32(truncatingIfNeeded: maskLow)) : nil }

    /// The IPv4 directed broadcast address (all host bits set); nil for IPv6, which has none.
    public var broadcast: VirtualIP? {
        guard let base = network.ipv4, let mask = netmask?.ipv4 else { return nil }
        return VirtualIP(base | ~mask)
    }

    public func contains(_ ip: VirtualIP) -> Bool {
        ip.family == family && ip.high & maskHigh == network.high && ip.low & maskLow == network.low
    }

    public var description: String { "\(network)/\(length)" }
}
