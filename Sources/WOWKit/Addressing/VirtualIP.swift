/// An IPv4 address on the virtual network (default 100.64.0.0/10), as a membership certificate binds it to
/// a node. Only IPv4 for now; the wire form starts with a family byte so IPv6 can follow.
public struct VirtualIP: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The address in network byte order, as one number.
    public var value: UInt32

    public init(_ value: UInt32) { self.value = value }

    /// Parses dotted-quad text (`100.64.0.7`); nil for anything else.
    public init?(_ text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var value: UInt32 = 0
        for part in parts {
            guard (1...3).contains(part.count), part.allSatisfy(\.isASCII), let octet = UInt8(part),
                  part.count == 1 || part.first != "0" else { return nil }
            value = value << 8 | UInt32(octet)
        }
        self.value = value
    }

    /// The four bytes, most significant first.
    public var bytes: [UInt8] { [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: value >> UInt32($0)) } }

    public var description: String { bytes.map(String.init).joined(separator: ".") }

    public static func < (lhs: VirtualIP, rhs: VirtualIP) -> Bool { lhs.value < rhs.value }
}
