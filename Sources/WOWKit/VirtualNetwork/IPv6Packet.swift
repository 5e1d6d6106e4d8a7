import NIOCore

/// Reading the few IPv6 fields the virtual network needs, in place, and making ICMPv6 errors: the IPv6 side
/// of `IPv4Packet`. Extension headers are not walked: addresses and lengths are all the virtual network
/// reads, and TCP segmentation and coalescing take TCP right after the fixed header only (`TCPHeaders`; the
/// host's TCP adds no extension headers).
public enum IPv6Packet {
    public static let headerSize = 40
    /// ICMPv6's next-header number.
    static let icmpProtocol: UInt8 = 58

    /// The header fields of a well-formed IPv6 packet at the buffer's reader index (`headerLength` is the
    /// fixed header's 40 bytes, `protocolNumber` the next header). A packet longer than its payload length
    /// says (padding) is accepted; a shorter one, or a jumbogram (payload length 0 with a hop-by-hop option),
    /// is not.
    public static func header(of packet: ByteBuffer) -> Result<IPv4Packet.Header, IPv4Packet.Problem> {
        let start = packet.readerIndex
        let available = packet.readableBytes
        guard let first = packet.getInteger(at: start, as: UInt8.self) else { return .failure(.empty) }
        guard first >> 4 == 6 else { return .failure(.notIPv4(version: first >> 4)) }
        guard available >= headerSize else { return .failure(.truncated(length: available)) }
        let payloadLength = Int(packet.getInteger(at: start + 4, as: UInt16.self)!)
        let nextHeader = packet.getInteger(at: start + 6, as: UInt8.self)!
        guard payloadLength > 0 || nextHeader != 0, headerSize + payloadLength <= available else {
            return .failure(.badTotalLength(claimed: headerSize + payloadLength, actual: available))
        }
        func address(at offset: Int) -> VirtualIP? {
            VirtualIP(v6: packet.getInteger(at: start + offset, as: UInt64.self)!,
                      low: packet.getInteger(at: start + offset + 8, as: UInt64.self)!)
        }
        // An IPv4-mapped address is no address of the virtual network: such a packet is malformed here.
        guard let source = address(at: 8), let destination = address(at: 24) else { return .failure(.v4MappedAddress) }
        return .success(IPv4Packet.Header(source: source, destination: destination, protocolNumber: nextHeader,
                                          headerLength: headerSize, totalLength: headerSize + payloadLength))
    }

    /// An ICMPv6 destination-unreachable message (type 1, RFC 4443) back to the sender of `original`, quoting
    /// it (its header and first 8 payload bytes: the sender's kernel finds the socket by them). It comes from
    /// the unreachable destination's address, as the IPv4 one does. `code` 3 is "address unreachable", 0 "no
    /// route to destination".
    public static func unreachable(code: UInt8, quoting original: [UInt8]) -> ByteBuffer? {
        guard original.count >= headerSize, original[0] >> 4 == 6 else { return nil }
        let originalSource = Array(original[8..<24])
        let originalDestination = Array(original[24..<40])
        let icmpLength = 8 + original.count
        var icmp: [UInt8] = [1, code, 0, 0, 0, 0, 0, 0] + original
        // The checksum covers the pseudo-header: source, destination, upper-layer length, next header.
        var pseudo = originalDestination + originalSource
        pseudo += [UInt8(icmpLength >> 24 & 0xFF), UInt8(icmpLength >> 16 & 0xFF), UInt8(icmpLength >> 8 & 0xFF),
                   UInt8(icmpLength & 0xFF), 0, 0, 0, icmpProtocol]
        let sum = IPv4Packet.checksum(pseudo + icmp)
        icmp[2] = UInt8(sum >> 8)
        icmp[3] = UInt8(sum & 0xFF)

        var header: [UInt8] = [0x60, 0, 0, 0, UInt8(icmpLength >> 8), UInt8(icmpLength & 0xFF), icmpProtocol, 64]
        header += originalDestination + originalSource
        var buffer = ByteBuffer()
        buffer.reserveCapacity(headerSize + icmpLength)
        buffer.writeBytes(header)
        buffer.writeBytes(icmp)
        return buffer
    }

    /// Whether `quote` (the start of an IPv6 packet) is an ICMPv6 error message: never answered with another
    /// (RFC 4443 section 2.4 (e)). Types below 128 are errors.
    static func isICMPError(_ quote: [UInt8]) -> Bool {
        quote.count > headerSize && quote[6] == icmpProtocol && quote[headerSize] < 128
    }
}

/// An IP packet of either family, as the virtual network reads it.
public enum IPPacket {
    /// The header of an IPv4 or IPv6 packet at the buffer's reader index, or what is wrong with it.
    public static func header(of packet: ByteBuffer) -> Result<IPv4Packet.Header, IPv4Packet.Problem> {
        guard let first = packet.getInteger(at: packet.readerIndex, as: UInt8.self) else { return .failure(.empty) }
        return first >> 4 == 6 ? IPv6Packet.header(of: packet) : IPv4Packet.header(of: packet)
    }

    /// An ICMP or ICMPv6 "unreachable" for the quoted packet: `host` says the address is unreachable (IPv4
    /// host unreachable, ICMPv6 address unreachable), else there is no route to its network. Nil when the
    /// quote is no IP packet, or is itself an ICMP error (never answered with another, RFC 1122 and 4443).
    static func unreachable(host: Bool, quoting quote: [UInt8]) -> ByteBuffer? {
        guard let first = quote.first else { return nil }
        if first >> 4 == 6 {
            return IPv6Packet.isICMPError(quote) ? nil : IPv6Packet.unreachable(code: host ? 3 : 0, quoting: quote)
        }
        let headerLength = Int(first & 0x0F) * 4
        if quote.count > max(headerLength, 9), quote[9] == IPv4Packet.icmpProtocol,
           [3, 4, 5, 11, 12].contains(quote[headerLength]) { return nil }
        return IPv4Packet.unreachable(code: host ? 1 : 0, quoting: quote)
    }
}
