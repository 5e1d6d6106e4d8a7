/// An IPv4 network on the virtual network side (`100.64.0.0/10` by default): the range the TUN device
/// routes into the overlay.
public struct VirtualPrefix: Hashable, Sendable, CustomStringConvertible {
    /// The network address (host bits zero).
    public let network: VirtualIP
    /// Prefix length, 1 to 32.
    public let length: Int

    /// WOW's default: the shared address space of RFC 6598, which no public host uses.
    public static let `default` = VirtualPrefix(network: VirtualIP(0x6440_0000), length: 10)!

    /// Nil when `length` is outside 1...32 or `network` has host bits set.
    public init?(network: VirtualIP, length: Int) {
        guard (1...32).contains(length) else { return nil }
        self.network = network
        self.length = length
        guard network.value & ~mask == 0 else { return nil }
    }

    /// Parses `a.b.c.d/len`; nil for anything else (including host bits set, e.g. `100.64.0.1/10`).
    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let ip = VirtualIP(String(parts[0])), parts[1].count <= 2,
              parts[1].allSatisfy(\.isASCII), let length = Int(parts[1]) else { return nil }
        self.init(network: ip, length: length)
    }

    /// The netmask as one number (`0xFFC0_0000` for /10).
    public var mask: UInt32 { length == 0 ? 0 : UInt32.max << UInt32(32 - length) }

    public var netmask: VirtualIP { VirtualIP(mask) }

    /// The directed broadcast address (all host bits set).
    public var broadcast: VirtualIP { VirtualIP(network.value | ~mask) }

    public func contains(_ ip: VirtualIP) -> Bool { ip.value & mask == network.value }

    public var description: String { "\(network)/\(length)" }
}
