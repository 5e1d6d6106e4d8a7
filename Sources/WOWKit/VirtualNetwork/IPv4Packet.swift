import NIOCore

/// Reading and writing the few IPv4 fields the virtual network needs, in place in a `ByteBuffer` (the packet
/// path allocates nothing per packet to look at a header).
public enum IPv4Packet {
    public static let minimumHeaderSize = 20
    /// The ICMP protocol number.
    static let icmpProtocol: UInt8 = 1
    /// The TCP and UDP protocol numbers.
    public static let tcpProtocol: UInt8 = 6
    public static let udpProtocol: UInt8 = 17

    /// What is wrong with bytes that should be an IPv4 packet.
    public enum Problem: Error, Equatable, Sendable {
        case empty
        case notIPv4(version: UInt8)
        case truncated(length: Int)
        case badHeaderLength(Int)
        case badTotalLength(claimed: Int, actual: Int)
        /// An IPv6 packet from or to an IPv4-mapped address (`::ffff:a.b.c.d`).
        case v4MappedAddress

        /// The drop counter's reason.
        public var reason: String {
            switch self {
            case .empty: return "ip_empty"
            case .notIPv4(let version): return version == 6 ? "ip_v6" : "ip_bad_version"
            case .truncated: return "ip_truncated"
            case .badHeaderLength: return "ip_bad_header_length"
            case .badTotalLength: return "ip_bad_total_length"
            case .v4MappedAddress: return "ip_v4_mapped"
            }
        }
    }

    /// The header fields of a well-formed IP packet at the buffer's reader index (`IPv6Packet` makes them for
    /// IPv6).
    public struct Header: Equatable, Sendable {
        public var source: VirtualIP
        public var destination: VirtualIP
        public var protocolNumber: UInt8
        public var headerLength: Int
        public var totalLength: Int
    }

    /// The packet's header, or what is wrong with it. A packet longer than its total length (padding) is
    /// accepted; a shorter one is not.
    public static func header(of packet: ByteBuffer) -> Result<Header, Problem> {
        // In one access of the bytes: this runs for every packet both ways.
        packet.withUnsafeReadableBytes { bytes in
            let available = bytes.count
            guard available > 0 else { return .failure(.empty) }
            let first = bytes[0]
            guard first >> 4 == 4 else { return .failure(.notIPv4(version: first >> 4)) }
            guard available >= minimumHeaderSize else { return .failure(.truncated(length: available)) }
            let headerLength = Int(first & 0x0F) * 4
            guard headerLength >= minimumHeaderSize, headerLength <= available else {
                return .failure(.badHeaderLength(headerLength))
            }
            let totalLength = Int(UInt16(bigEndian: bytes.loadUnaligned(fromByteOffset: 2, as: UInt16.self)))
            guard totalLength >= headerLength, totalLength <= available else {
                return .failure(.badTotalLength(claimed: totalLength, actual: available))
            }
            return .success(Header(source: VirtualIP(UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: 12, as: UInt32.self))),
                                   destination: VirtualIP(UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: 16, as: UInt32.self))),
                                   protocolNumber: bytes[9], headerLength: headerLength, totalLength: totalLength))
        }
    }

    /// The Internet checksum (RFC 1071) of `bytes`.
    public static func checksum<Bytes: Sequence>(_ bytes: Bytes) -> UInt16 where Bytes.Element == UInt8 {
        var sum: UInt32 = 0
        var high: UInt8?
        for byte in bytes {
            if let pending = high {
                sum += UInt32(pending) << 8 | UInt32(byte)
                high = nil
            } else {
                high = byte
            }
        }
        if let pending = high { sum += UInt32(pending) << 8 }
        while sum >> 16 != 0 { sum = (sum & 0xFFFF) + (sum >> 16) }
        return ~UInt16(truncatingIfNeeded: sum)
    }

    /// The ones' complement sum (RFC 1071) of `bytes` as big-endian 16-bit words, added to `initial`, not
    /// folded: fold it with `fold`. Reads 8 bytes at a time with end-around carry (2^64 = 1 modulo 2^16 - 1,
    /// so a 64-bit sum folds to the 16-bit one); the offload paths sum whole 64 KB super-segments.
    public static func onesComplementSum(_ bytes: UnsafeRawBufferPointer, initial: UInt64 = 0) -> UInt64 {
        var sum = initial
        var index = 0
        let count = bytes.count
        while index + 8 <= count {
            let word = UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self))
            let (added, carry) = sum.addingReportingOverflow(word)
            sum = added &+ (carry ? 1 : 0)
            index += 8
        }
        var tail: UInt64 = 0
        while index + 2 <= count {
            tail += UInt64(UInt16(bigEndian: bytes.loadUnaligned(fromByteOffset: index, as: UInt16.self)))
            index += 2
        }
        if index < count { tail += UInt64(bytes[index]) << 8 }
        let (added, carry) = sum.addingReportingOverflow(tail)
        return added &+ (carry ? 1 : 0)
    }

    /// A ones' complement sum folded to 16 bits (not complemented).
    public static func fold(_ sum: UInt64) -> UInt16 {
        var folded = sum
        while folded >> 16 != 0 { folded = (folded & 0xFFFF) + (folded >> 16) }
        return UInt16(folded)
    }

    /// The ones' complement sum of the TCP/UDP pseudo-header: addresses, protocol, and the transport length.
    public static func pseudoHeaderSum(source: UInt32, destination: UInt32, protocolNumber: UInt8, length: Int) -> UInt64 {
        UInt64(source >> 16) + UInt64(source & 0xFFFF) + UInt64(destination >> 16) + UInt64(destination & 0xFFFF)
            + UInt64(protocolNumber) + UInt64(length)
    }

    /// An ICMP destination-unreachable message (type 3) back to the sender of `original`, quoting its IP
    /// header and first 8 payload bytes as RFC 792 asks (the sender's kernel matches the error to the socket
    /// by them). It comes from the unreachable destination's address: the host's kernel drops packets that
    /// claim to come from one of its own addresses. `code` 1 is "host unreachable", 0 "net unreachable".
    public static func unreachable(code: UInt8, quoting original: [UInt8]) -> ByteBuffer? {
        guard original.count >= minimumHeaderSize, original[0] >> 4 == 4 else { return nil }
        let originalSource = Array(original[12..<16])
        let originalDestination = Array(original[16..<20])
        let icmpLength = 8 + original.count
        var icmp = [UInt8](repeating: 0, count: 4)
        icmp[0] = 3
        icmp[1] = code
        icmp += [0, 0, 0, 0] + original
        let icmpSum = checksum(icmp)
        icmp[2] = UInt8(icmpSum >> 8)
        icmp[3] = UInt8(icmpSum & 0xFF)

        let total = minimumHeaderSize + icmpLength
        var header: [UInt8] = [0x45, 0xC0, UInt8(total >> 8), UInt8(total & 0xFF), 0, 0, 0, 0, 64, icmpProtocol, 0, 0]
        header += originalDestination + originalSource
        let headerSum = checksum(header)
        header[10] = UInt8(headerSum >> 8)
        header[11] = UInt8(headerSum & 0xFF)

        var buffer = ByteBuffer()
        buffer.reserveCapacity(total)
        buffer.writeBytes(header)
        buffer.writeBytes(icmp)
        return buffer
    }
}
