import Crypto

/// A position on the 160-bit ring (Brunet's `AHAddress`).
///
/// The ring wraps: arithmetic is modulo 2^160. "Left" is the direction of increasing address, "right" of
/// decreasing address, as in Brunet. The value is three words, most significant first.
public struct Address: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// Bits 159...96.
    public var high: UInt64
    /// Bits 95...32.
    public var middle: UInt64
    /// Bits 31...0.
    public var low: UInt32

    /// The number of bytes in the wire form.
    public static let byteCount = 20

    public init(high: UInt64, middle: UInt64, low: UInt32) {
        self.high = high
        self.middle = middle
        self.low = low
    }

    public static let zero = Address(high: 0, middle: 0, low: 0)
    /// 2^160 - 1, the largest address.
    public static let max = Address(high: .max, middle: .max, low: .max)
    /// 2^159, half the ring: the largest magnitude a ring distance can have.
    public static let half = Address(high: 1 << 63, middle: 0, low: 0)

    /// Builds an address from its 20-byte big-endian form; nil unless exactly 20 bytes are given.
    public init?<Bytes: Collection>(bytes: Bytes) where Bytes.Element == UInt8 {
        guard bytes.count == Address.byteCount else { return nil }
        var words = [UInt64](repeating: 0, count: 3)
        for (index, byte) in bytes.enumerated() {
            let word = index < 8 ? 0 : (index < 16 ? 1 : 2)
            words[word] = words[word] << 8 | UInt64(byte)
        }
        self.init(high: words[0], middle: words[1], low: UInt32(truncatingIfNeeded: words[2]))
    }

    /// The 20-byte big-endian form.
    public var bytes: [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(Address.byteCount)
        for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: high >> UInt64(shift))) }
        for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: middle >> UInt64(shift))) }
        for shift in stride(from: 24, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: low >> UInt32(shift))) }
        return out
    }

    /// The address at the SHA-1 of `data` (160 bits, as WOW placed nodes at the SHA-1 of their virtual IP).
    public static func hashing(_ data: [UInt8]) -> Address {
        let digest = Insecure.SHA1.hash(data: data)
        return Address(bytes: Array(digest))!  // SHA-1 is exactly 20 bytes.
    }

    /// The address at the SHA-1 of a string's UTF-8 bytes.
    public static func hashing(_ text: String) -> Address { hashing(Array(text.utf8)) }

    public static func < (lhs: Address, rhs: Address) -> Bool {
        if lhs.high != rhs.high { return lhs.high < rhs.high }
        if lhs.middle != rhs.middle { return lhs.middle < rhs.middle }
        return lhs.low < rhs.low
    }

    /// Sum modulo 2^160.
    public static func &+ (lhs: Address, rhs: Address) -> Address {
        let low = UInt64(lhs.low) + UInt64(rhs.low)  // at most 2^33: cannot overflow
        let carry1: UInt64 = low > UInt64(UInt32.max) ? 1 : 0
        var (middle, middleOverflow) = lhs.middle.addingReportingOverflow(rhs.middle)
        var carry2: UInt64 = middleOverflow ? 1 : 0
        if carry1 == 1 {
            let (m, o) = middle.addingReportingOverflow(1)
            middle = m
            if o { carry2 += 1 }
        }
        let high = lhs.high &+ rhs.high &+ carry2
        return Address(high: high, middle: middle, low: UInt32(truncatingIfNeeded: low))
    }

    /// Difference modulo 2^160.
    public static func &- (lhs: Address, rhs: Address) -> Address {
        lhs &+ rhs.negated
    }

    /// The two's-complement negation modulo 2^160.
    public var negated: Address {
        Address(high: ~high, middle: ~middle, low: ~low) &+ Address(high: 0, middle: 0, low: 1)
    }

    /// How far `other` lies to the left (increasing direction) of `self`, in [0, 2^160).
    public func leftDistance(to other: Address) -> Address { other &- self }

    /// How far `other` lies to the right (decreasing direction) of `self`, in [0, 2^160).
    public func rightDistance(to other: Address) -> Address { self &- other }

    /// The signed ring distance from `self` to `other`: the shorter way round, with its direction.
    public func distance(to other: Address) -> RingDistance {
        let left = leftDistance(to: other)
        if left <= Address.half { return RingDistance(magnitude: left, direction: .left) }
        return RingDistance(magnitude: left.negated, direction: .right)
    }

    /// Whether `self` lies on the left of `other` (the shorter way round from `other`). False for `other` itself;
    /// at exactly half the ring both points count as left of each other.
    public func isLeft(of other: Address) -> Bool {
        self != other && other.distance(to: self).direction == .left
    }

    /// The value as a fraction of the whole ring, in [0, 1); used for estimates, never for routing decisions.
    public var ringFraction: Double {
        let fraction = (Double(high) + Double(middle) / 18_446_744_073_709_551_616.0) / 18_446_744_073_709_551_616.0
        // Rounding to a Double takes the topmost addresses to exactly 1.
        return Swift.min(fraction, 1.0.nextDown)
    }

    /// The address at `fraction` (in [0, 1)) of the ring.
    public init(ringFraction fraction: Double) {
        let clamped = Swift.max(0, Swift.min(fraction, 0.999_999_999_999))
        let scaledHigh = clamped * 18_446_744_073_709_551_616.0
        let high = UInt64(scaledHigh.rounded(.down))
        let rest = (scaledHigh - Double(high)) * 18_446_744_073_709_551_616.0
        let middle = rest >= 18_446_744_073_709_551_615.0 ? UInt64.max : UInt64(rest.rounded(.down))
        self.init(high: high, middle: middle, low: 0)
    }

    /// Forty hex digits, most significant first.
    public var hex: String {
        bytes.map { byte in
            let digits = Array("0123456789abcdef")
            return String([digits[Int(byte >> 4)], digits[Int(byte & 0xf)]])
        }.joined()
    }

    /// Parses forty hex digits (as `hex` writes them); nil for anything else.
    public init?(hex text: String) {
        let chars = Array(text.utf8)
        guard chars.count == 40 else { return nil }
        var out = [UInt8]()
        out.reserveCapacity(20)
        var index = 0
        while index < 40 {
            guard let hi = Address.nibble(chars[index]), let lo = Address.nibble(chars[index + 1]) else { return nil }
            out.append(hi << 4 | lo)
            index += 2
        }
        self.init(bytes: out)
    }

    private static func nibble(_ char: UInt8) -> UInt8? {
        switch char {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return char - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return char - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return char - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    /// A short readable form: the first eight hex digits, enough to tell nodes apart in logs and tables.
    public var short: String { String(hex.prefix(8)) }

    public var description: String { hex }
}

/// A signed distance on the ring: how far, and which way is shorter.
public struct RingDistance: Hashable, Comparable, Sendable {
    public enum Direction: Sendable { case left, right }
    /// In [0, 2^159].
    public var magnitude: Address
    public var direction: Direction

    /// Orders by magnitude only: which of two points is nearer.
    public static func < (lhs: RingDistance, rhs: RingDistance) -> Bool { lhs.magnitude < rhs.magnitude }
}
