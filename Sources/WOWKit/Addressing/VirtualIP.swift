/// An address on the virtual network, as a membership certificate binds it to a node: IPv4 (default network
/// 100.64.0.0/10) or IPv6 (a ULA, default network fd77:6f77::/48). Held as 128 bits, an IPv4 address in its
/// IPv4-mapped form (`::ffff:a.b.c.d`), so one value type serves both families in dictionaries and
/// certificates; an IPv4-mapped IPv6 address is not a virtual IP of its own.
public struct VirtualIP: Hashable, Comparable, Sendable, CustomStringConvertible {
    public enum Family: UInt8, Sendable {
        case v4 = 4
        case v6 = 6
    }

    /// The first and last eight bytes of the 128-bit form, in network order as numbers.
    public let high: UInt64
    public let low: UInt64

    private static let mappedMarker: UInt64 = 0xFFFF_0000_0000

    /// An IPv4 address from its four bytes as one number (network order, `0x6440_0007` is 100.64.0.7).
    public init(_ v4: UInt32) {
        high = 0
        low = VirtualIP.mappedMarker | UInt64(v4)
    }

    /// An IPv6 address from its two halves; nil for an IPv4-mapped one (that is the IPv4 address's form here).
    public init?(v6 high: UInt64, low: UInt64) {
        guard high != 0 || low >> 32 != 0xFFFF else { return nil }
        self.high = high
        self.low = low
    }

    /// The address whose bytes, most significant first, are `bytes`: 4 for IPv4, 16 for IPv6.
    public init?<Bytes: Collection>(bytes: Bytes) where Bytes.Element == UInt8 {
        func number<T: FixedWidthInteger>(_ slice: Bytes.SubSequence) -> T { slice.reduce(0) { $0 << 8 | T($1) } }
        switch bytes.count {
        case 4: self.init(number(bytes[...]) as UInt32)
        case 16:
            let middle = bytes.index(bytes.startIndex, offsetBy: 8)
            self.init(v6: number(bytes[..<middle]), low: number(bytes[middle...]))
        default: return nil
        }
    }

    /// Parses dotted-quad IPv4 text (`100.64.0.7`) or IPv6 text (`fd77:6f77::7`, RFC 4291 section 2.2 without
    /// an embedded IPv4 tail or a zone); nil for anything else.
    public init?(_ text: String) {
        if text.contains(":") {
            guard let (high, low) = VirtualIP.parseIPv6(text) else { return nil }
            self.init(v6: high, low: low)
        } else {
            guard let value = VirtualIP.parseIPv4(text) else { return nil }
            self.init(value)
        }
    }

    public var family: Family { high == 0 && low >> 32 == 0xFFFF ? .v4 : .v6 }

    /// The IPv4 address as one number; nil for IPv6.
    public var ipv4: UInt32? { family == .v4 ? UInt32(truncatingIfNeeded: low) : nil }

    /// The address's bytes, most significant first: 4 for IPv4, 16 for IPv6 (what ring addresses hash, and
    /// certificates and DNS answers carry).
    public var bytes: [UInt8] {
        if let ipv4 { return [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: ipv4 >> UInt32($0)) } }
        return (0..<16).map { index in
            let half = index < 8 ? high : low
            return UInt8(truncatingIfNeeded: half >> UInt64(56 - 8 * (index % 8)))
        }
    }

    /// Dotted quad, or IPv6 in its canonical text (RFC 5952: lowercase, no leading zeros, the longest run of
    /// two or more zero groups as `::`).
    public var description: String {
        if ipv4 != nil { return bytes.map(String.init).joined(separator: ".") }
        let groups = (0..<8).map { UInt16(truncatingIfNeeded: ($0 < 4 ? high : low) >> UInt64(48 - 16 * ($0 % 4))) }
        var best: Range<Int>?
        var index = 0
        while index < 8 {
            guard groups[index] == 0 else { index += 1; continue }
            var end = index
            while end < 8 && groups[end] == 0 { end += 1 }
            if end - index >= 2, end - index > (best?.count ?? 0) { best = index..<end }
            index = end
        }
        let hex = groups.map { String($0, radix: 16) }
        guard let best else { return hex.joined(separator: ":") }
        return hex[..<best.lowerBound].joined(separator: ":") + "::" + hex[best.upperBound...].joined(separator: ":")
    }

    public static func < (lhs: VirtualIP, rhs: VirtualIP) -> Bool { (lhs.high, lhs.low) < (rhs.high, rhs.low) }

    private static func parseIPv4(_ text: String) -> UInt32? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var value: UInt32 = 0
        for part in parts {
            guard (1...3).contains(part.count), part.allSatisfy({ ("0"..."9").contains($0) }), let octet = UInt8(part),
                  part.count == 1 || part.first != "0" else { return nil }
            value = value << 8 | UInt32(octet)
        }
        return value
    }

    private static func parseIPv6(_ text: String) -> (UInt64, UInt64)? {
        guard text.utf8.count <= 39, text.allSatisfy({ $0.isASCII }) else { return nil }
        let halves = text.components(separatedBy: "::")
        guard halves.count <= 2 else { return nil }
        func groups(_ part: String) -> [UInt16]? {
            guard !part.isEmpty else { return [] }
            var result: [UInt16] = []
            for group in part.split(separator: ":", omittingEmptySubsequences: false) {
                guard (1...4).contains(group.count), group.allSatisfy(\.isHexDigit), let value = UInt16(group, radix: 16) else {
                    return nil
                }
                result.append(value)
            }
            return result
        }
        guard let head = groups(halves[0]) else { return nil }
        var all = head
        if halves.count == 2 {
            guard let tail = groups(halves[1]), head.count + tail.count <= 7 else { return nil }
            all += Array(repeating: 0, count: 8 - head.count - tail.count) + tail
        }
        guard all.count == 8 else { return nil }
        let high = all[0..<4].reduce(UInt64(0)) { $0 << 16 | UInt64($1) }
        let low = all[4..<8].reduce(UInt64(0)) { $0 << 16 | UInt64($1) }
        return (high, low)
    }
}
