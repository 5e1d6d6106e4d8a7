import XCTest

@testable import WOWKit

/// Ring addresses: text and byte forms, modular arithmetic against a byte-wise reference, and ring distances.
final class AddressTests: XCTestCase {

    // MARK: Text and bytes

    func testHexRoundTrips() {
        var random = SeededRandom(seed: 0xADD0)
        for address in edgeAddresses + (0..<500).map({ _ in random.address() }) {
            let hex = address.hex
            XCTAssertEqual(hex.utf8.count, 40)
            XCTAssertTrue(hex.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }, hex)
            XCTAssertEqual(Address(hex: hex), address)
            XCTAssertEqual(Address(hex: hex.uppercased()), address)
            XCTAssertEqual(address.description, hex)
            XCTAssertEqual(address.short, String(hex.prefix(8)))
        }
        XCTAssertEqual(Address.zero.hex, String(repeating: "0", count: 40))
        XCTAssertEqual(Address.max.hex, String(repeating: "f", count: 40))
        XCTAssertEqual(Address.half.hex, "8" + String(repeating: "0", count: 39))
        XCTAssertEqual(Address(high: 0x0102_0304_0506_0708, middle: 0x090A_0B0C_0D0E_0F10, low: 0x1112_1314).hex,
                       "0102030405060708090a0b0c0d0e0f1011121314")
    }

    func testBadHexIsRejected() {
        let valid = "0123456789abcdef0123456789abcdef01234567"
        let body39 = String(valid.dropLast())
        let tail39 = String(valid.dropFirst())
        let tail38 = String(tail39.dropFirst())
        let bad: [String] = [
            "",
            body39,                                      // 39 digits
            valid + "0",                                 // 41 digits
            "0x" + tail38,                               // prefix
            "g" + tail39,                                // not a hex digit
            body39 + " ",                                // space
            body39 + "-",
            " " + tail39,
            String(valid.dropLast(2)) + "é",             // 40 bytes, but é is two non-hex bytes
            String(repeating: "é", count: 20),           // 40 bytes of UTF-8
            body39 + "\u{0}",
        ]
        for text in bad { XCTAssertNil(Address(hex: text), "'\(text)' should not parse") }
    }

    func testBytesRoundTrip() {
        let bytes: [UInt8] = Array(1...20)
        let address = Address(bytes: bytes)
        XCTAssertEqual(address, Address(high: 0x0102_0304_0506_0708, middle: 0x090A_0B0C_0D0E_0F10, low: 0x1112_1314))
        XCTAssertEqual(address?.bytes, bytes)
        XCTAssertEqual(Address(bytes: bytes[...]), address, "any collection of bytes")

        var random = SeededRandom(seed: 0xB17E)
        for address in edgeAddresses + (0..<500).map({ _ in random.address() }) {
            XCTAssertEqual(address.bytes.count, Address.byteCount)
            XCTAssertEqual(Address(bytes: address.bytes), address)
        }
        XCTAssertNil(Address(bytes: [UInt8]()))
        XCTAssertNil(Address(bytes: [UInt8](repeating: 1, count: 19)))
        XCTAssertNil(Address(bytes: [UInt8](repeating: 1, count: 21)))
    }

    func testOrderIsNumericAcrossWords() {
        XCTAssertLessThan(Address.zero, one)
        XCTAssertLessThan(Address(high: 0, middle: 0, low: .max), Address(high: 0, middle: 1, low: 0))
        XCTAssertLessThan(Address(high: 0, middle: .max, low: .max), Address(high: 1, middle: 0, low: 0))
        XCTAssertLessThan(Address(high: .max - 1, middle: .max, low: .max), Address.max)
        var random = SeededRandom(seed: 0x0DE5)
        for _ in 0..<500 {
            let (x, y) = (random.address(), random.address())
            XCTAssertEqual(x < y, x.bytes.lexicographicallyPrecedes(y.bytes))
        }
    }

    // MARK: Arithmetic

    func testAdditionWrapsAroundTheRing() {
        XCTAssertEqual(Address.max &+ one, .zero)
        XCTAssertEqual(Address.zero &- one, .max)
        XCTAssertEqual(Address.max &+ Address.max, Address.max &- one)
        XCTAssertEqual(Address.half &+ Address.half, .zero)
    }

    func testAdditionCarriesAcrossWords() {
        // low -> middle
        XCTAssertEqual(Address(high: 0, middle: 0, low: .max) &+ one, Address(high: 0, middle: 1, low: 0))
        // low -> middle -> high
        XCTAssertEqual(Address(high: 0, middle: .max, low: .max) &+ one, Address(high: 1, middle: 0, low: 0))
        // middle -> high without a low carry
        XCTAssertEqual(Address(high: 0, middle: 1 << 63, low: 0) &+ Address(high: 0, middle: 1 << 63, low: 0),
                       Address(high: 1, middle: 0, low: 0))
        // middle overflows and the low carry lands on the wrapped middle
        XCTAssertEqual(Address(high: 0, middle: .max, low: .max) &+ Address(high: 0, middle: .max, low: 1),
                       Address(high: 1, middle: .max, low: 0))
        // high wraps
        XCTAssertEqual(Address(high: .max, middle: 0, low: 0) &+ Address(high: 2, middle: 0, low: 5),
                       Address(high: 1, middle: 0, low: 5))
        // borrows in subtraction
        XCTAssertEqual(Address(high: 1, middle: 0, low: 0) &- one, Address(high: 0, middle: .max, low: .max))
        XCTAssertEqual(Address(high: 0, middle: 1, low: 0) &- one, Address(high: 0, middle: 0, low: .max))
    }

    func testArithmeticMatchesByteWiseReference() {
        var random = SeededRandom(seed: 0x5EED)
        var pairs = [(Address, Address)]()
        for x in edgeAddresses { for y in edgeAddresses { pairs.append((x, y)) } }
        for _ in 0..<2_000 { pairs.append((random.address(), random.address())) }
        for (x, y) in pairs {
            XCTAssertEqual(x &+ y, referenceSum(x, y), "\(x) + \(y)")
            XCTAssertEqual(x &- y, referenceSum(x, referenceNegation(y)), "\(x) - \(y)")
            XCTAssertEqual((x &+ y) &- y, x)
            XCTAssertEqual(x &+ y, y &+ x)
        }
    }

    func testNegation() {
        XCTAssertEqual(Address.zero.negated, .zero)
        XCTAssertEqual(one.negated, .max)
        XCTAssertEqual(Address.max.negated, one)
        XCTAssertEqual(Address.half.negated, .half)
        XCTAssertEqual(Address(high: 0, middle: 0, low: 1 << 31).negated, Address(high: .max, middle: .max, low: 1 << 31))
        var random = SeededRandom(seed: 0x0E6A)
        for address in edgeAddresses + (0..<500).map({ _ in random.address() }) {
            XCTAssertEqual(address.negated, referenceNegation(address))
            XCTAssertEqual(address.negated.negated, address)
            XCTAssertEqual(address &+ address.negated, .zero)
        }
    }

    // MARK: Ring distances

    func testLeftAndRightDistances() {
        let ten = small(10), three = small(3)
        XCTAssertEqual(ten.leftDistance(to: small(15)), small(5))
        XCTAssertEqual(ten.rightDistance(to: three), small(7))
        XCTAssertEqual(ten.leftDistance(to: three), small(7).negated, "the long way round")
        XCTAssertEqual(ten.rightDistance(to: small(15)), small(5).negated)
        XCTAssertEqual(Address.max.leftDistance(to: one), small(2), "wraps past zero")
        XCTAssertEqual(one.rightDistance(to: .max), small(2), "wraps past zero")
        XCTAssertEqual(ten.leftDistance(to: ten), .zero)
        XCTAssertEqual(ten.rightDistance(to: ten), .zero)

        var random = SeededRandom(seed: 0xD157)
        for _ in 0..<500 {
            let (x, y) = (random.address(), random.address())
            XCTAssertEqual(x.leftDistance(to: y) &+ x.rightDistance(to: y), .zero)
            XCTAssertEqual(x.leftDistance(to: y), y.rightDistance(to: x))
        }
    }

    func testDistanceTakesTheShorterWayWithItsDirection() {
        let ten = small(10)
        XCTAssertEqual(ten.distance(to: small(15)), RingDistance(magnitude: small(5), direction: .left))
        XCTAssertEqual(ten.distance(to: small(3)), RingDistance(magnitude: small(7), direction: .right))
        XCTAssertEqual(Address.max.distance(to: one), RingDistance(magnitude: small(2), direction: .left))
        XCTAssertEqual(one.distance(to: .max), RingDistance(magnitude: small(2), direction: .right))
        XCTAssertEqual(ten.distance(to: ten).magnitude, .zero)

        // Just under, exactly, and just over half the ring.
        let justUnder = Address.half &- one
        XCTAssertEqual(Address.zero.distance(to: justUnder), RingDistance(magnitude: justUnder, direction: .left))
        XCTAssertEqual(Address.zero.distance(to: .half &+ one), RingDistance(magnitude: justUnder, direction: .right))
        // Exactly half is the largest magnitude, and counts as left from either end.
        XCTAssertEqual(Address.zero.distance(to: .half), RingDistance(magnitude: .half, direction: .left))
        XCTAssertEqual(Address.half.distance(to: .zero), RingDistance(magnitude: .half, direction: .left))
        XCTAssertEqual(small(7).distance(to: small(7) &+ .half), RingDistance(magnitude: .half, direction: .left))

        var random = SeededRandom(seed: 0xD15C)
        for _ in 0..<1_000 {
            let (x, y) = (random.address(), random.address())
            let d = x.distance(to: y)
            let shorter = Swift.min(x.leftDistance(to: y), x.rightDistance(to: y))
            XCTAssertEqual(d.magnitude, shorter)
            XCTAssertLessThanOrEqual(d.magnitude, .half)
            // Walking `magnitude` in `direction` from x reaches y.
            XCTAssertEqual(d.direction == .left ? x &+ d.magnitude : x &- d.magnitude, y)
            if x.leftDistance(to: y) != .half {
                XCTAssertNotEqual(y.distance(to: x).direction, d.direction, "the way back is the other way")
                XCTAssertEqual(y.distance(to: x).magnitude, d.magnitude)
            }
        }
    }

    func testRingDistancesOrderByMagnitude() {
        let near = RingDistance(magnitude: small(3), direction: .right)
        let far = RingDistance(magnitude: small(4), direction: .left)
        XCTAssertLessThan(near, far)
        XCTAssertFalse(far < near)
    }

    func testIsLeft() {
        let ten = small(10)
        XCTAssertTrue(small(15).isLeft(of: ten), "15 is on the left (greater side) of 10")
        XCTAssertFalse(small(3).isLeft(of: ten))
        XCTAssertFalse(ten.isLeft(of: small(15)))
        XCTAssertTrue(ten.isLeft(of: small(3)))
        XCTAssertFalse(ten.isLeft(of: ten), "never left of itself")
        XCTAssertTrue(one.isLeft(of: .max), "across zero, 1 is two steps left of max")
        XCTAssertFalse(Address.max.isLeft(of: one))
        // Greater but more than half the ring away: the shorter way is right.
        XCTAssertFalse((Address.half &+ small(11)).isLeft(of: ten))
        // Exactly half the ring apart, each counts as left of the other (distance reports half as left).
        XCTAssertTrue(Address.half.isLeft(of: .zero))
        XCTAssertTrue(Address.zero.isLeft(of: .half))

        var random = SeededRandom(seed: 0x1EF7)
        for _ in 0..<500 {
            let (x, y) = (random.address(), random.address())
            guard x != y, x.leftDistance(to: y) != .half else { continue }
            XCTAssertNotEqual(x.isLeft(of: y), y.isLeft(of: x), "exactly one of two distinct points is left")
            XCTAssertEqual(x.isLeft(of: y), y.distance(to: x).direction == .left)
        }
    }

    // MARK: Ring fraction

    func testRingFractionRoundTripsRoughly() {
        XCTAssertEqual(Address.zero.ringFraction, 0)
        XCTAssertEqual(Address.half.ringFraction, 0.5)
        XCTAssertEqual(Address(ringFraction: 0), .zero)
        XCTAssertEqual(Address(ringFraction: 0.5), .half)
        XCTAssertEqual(Address(ringFraction: 0.25).ringFraction, 0.25)
        XCTAssertEqual(Address(ringFraction: -3), .zero, "clamped")
        XCTAssertEqual(Address(ringFraction: .nan), .zero)
        XCTAssertLessThan(Address(ringFraction: 1).ringFraction, 1, "clamped below one")
        XCTAssertLessThan(Address(ringFraction: .infinity).ringFraction, 1)
        XCTAssertLessThan(Address.max.ringFraction, 1, "the documented range is [0, 1)")

        var random = SeededRandom(seed: 0xF4AC)
        for _ in 0..<1_000 {
            let fraction = random.unit()
            let address = Address(ringFraction: fraction)
            XCTAssertEqual(address.ringFraction, fraction, accuracy: 1e-12)
            let other = random.address()
            XCTAssertEqual(Address(ringFraction: other.ringFraction).ringFraction, other.ringFraction, accuracy: 1e-12)
            XCTAssertGreaterThanOrEqual(other.ringFraction, 0)
            XCTAssertLessThan(other.ringFraction, 1)
        }
    }

    // MARK: Hashing

    func testHashingIsSHA1AndDeterministic() {
        // FIPS 180 test vector: SHA-1("abc").
        XCTAssertEqual(Address.hashing("abc").hex, "a9993e364706816aba3e25717850c26c9cd0d89d")
        XCTAssertEqual(Address.hashing("").hex, "da39a3ee5e6b4b0d3255bfef95601890afd80709")
        XCTAssertEqual(Address.hashing("abc"), Address.hashing([0x61, 0x62, 0x63]))
        XCTAssertEqual(Address.hashing("100.64.0.1"), Address.hashing("100.64.0.1"))
        XCTAssertNotEqual(Address.hashing("100.64.0.1"), Address.hashing("100.64.0.2"))
        XCTAssertEqual(Address.hashing("node").bytes.count, 20)
    }

    // MARK: Helpers

    private let one = Address(high: 0, middle: 0, low: 1)

    private func small(_ value: UInt32) -> Address { Address(high: 0, middle: 0, low: value) }

    /// Addresses whose words sit at the carry boundaries.
    private var edgeAddresses: [Address] {
        let words64: [UInt64] = [0, 1, 1 << 63, .max - 1, .max]
        let words32: [UInt32] = [0, 1, 1 << 31, .max]
        return words64.flatMap { high in
            words64.flatMap { middle in words32.map { Address(high: high, middle: middle, low: $0) } }
        }
    }

    /// Sum modulo 2^160 computed byte by byte on the 20-byte form.
    private func referenceSum(_ x: Address, _ y: Address) -> Address {
        let (a, b) = (x.bytes, y.bytes)
        var out = [UInt8](repeating: 0, count: 20)
        var carry = 0
        for index in stride(from: 19, through: 0, by: -1) {
            let sum = Int(a[index]) + Int(b[index]) + carry
            out[index] = UInt8(sum & 0xFF)
            carry = sum >> 8
        }
        return Address(bytes: out)!
    }

    /// Two's complement negation computed on the 20-byte form.
    private func referenceNegation(_ x: Address) -> Address {
        referenceSum(Address(bytes: x.bytes.map { ~$0 })!, one)
    }
}
