import NIOCore

/// The IP and TCP headers of a well-formed, unfragmented TCP packet at a buffer's reader index, over IPv4 or
/// IPv6 (TCP right after the fixed IPv6 header: no extension headers): what segmentation, coalescing and the
/// TUN device's checksum offload need to know, read in place.
public struct TCPHeaders: Sendable {
    /// Where the checksum field sits in the TCP header.
    public static let checksumOffset: UInt16 = 16
    public static let fin: UInt8 = 0x01
    public static let syn: UInt8 = 0x02
    public static let rst: UInt8 = 0x04
    public static let psh: UInt8 = 0x08
    public static let ack: UInt8 = 0x10
    public static let urg: UInt8 = 0x20
    public static let ece: UInt8 = 0x40
    public static let cwr: UInt8 = 0x80

    public let ipHeaderLength: Int
    public let tcpHeaderLength: Int
    /// The IP packet's length (the packet may be followed by padding in its buffer).
    public let totalLength: Int
    public let flags: UInt8
    /// The source and destination ports as one number (as they sit in the header): with the addresses, a flow.
    public let ports: UInt32
    /// The sequence number of the first payload byte.
    public let sequence: UInt32
    public let source: VirtualIP
    public let destination: VirtualIP

    public var isIPv6: Bool { source.family == .v6 }
    public var headersLength: Int { ipHeaderLength + tcpHeaderLength }
    public var payloadLength: Int { totalLength - headersLength }

    /// Nil unless `packet` is a TCP packet with a whole TCP header (not an IPv4 fragment, not behind IPv6
    /// extension headers).
    public init?(_ packet: ByteBuffer) {
        guard case .success(let ip) = IPPacket.header(of: packet) else { return nil }
        self.init(packet, ip: ip)
    }

    /// The same, for a packet whose IP header `ip` was read already (`IPPacket.header(of:)`). Nil, too, for a
    /// header that does not fit the packet (one read from another).
    public init?(_ packet: ByteBuffer, ip: IPv4Packet.Header) {
        guard ip.protocolNumber == IPv4Packet.tcpProtocol, ip.headerLength >= IPv4Packet.minimumHeaderSize,
              ip.totalLength >= ip.headerLength + 20, ip.totalLength <= packet.readableBytes else { return nil }
        // In one access of the bytes (the checks above say they are there).
        let fields: (tcpHeaderLength: Int, flags: UInt8, ports: UInt32, sequence: UInt32)? = packet.withUnsafeReadableBytes { bytes in
            // An IPv4 fragment has no TCP header of its own (offset > 0) or not all of its bytes (more fragments).
            if ip.source.family == .v4, UInt16(bigEndian: bytes.loadUnaligned(fromByteOffset: 6, as: UInt16.self)) & 0x3FFF != 0 {
                return nil
            }
            let tcp = ip.headerLength
            return (Int(bytes[tcp + 12] >> 4) * 4, bytes[tcp + 13],
                    UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: tcp, as: UInt32.self)),
                    UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: tcp + 4, as: UInt32.self)))
        }
        guard let fields, fields.tcpHeaderLength >= 20, ip.headerLength + fields.tcpHeaderLength <= ip.totalLength else {
            return nil
        }
        ipHeaderLength = ip.headerLength
        tcpHeaderLength = fields.tcpHeaderLength
        totalLength = ip.totalLength
        flags = fields.flags
        ports = fields.ports
        sequence = fields.sequence
        source = ip.source
        destination = ip.destination
    }

    /// What a partial checksum field holds: the pseudo-header's sum, folded, not complemented.
    public func partialChecksum(transportLength: Int) -> UInt16 {
        func words(_ bits: UInt64) -> UInt64 { (bits >> 48) + (bits >> 32 & 0xFFFF) + (bits >> 16 & 0xFFFF) + (bits & 0xFFFF) }
        var sum = UInt64(IPv4Packet.tcpProtocol) + UInt64(transportLength >> 16) + UInt64(transportLength & 0xFFFF)
        if isIPv6 {
            sum += words(source.high) + words(source.low) + words(destination.high) + words(destination.low)
        } else {
            // The IPv4 address is the low 32 bits of its mapped form.
            sum += words(source.low & 0xFFFF_FFFF) + words(destination.low & 0xFFFF_FFFF)
        }
        return IPv4Packet.fold(sum)
    }

    /// Sets the IP length of the packet at `buffer`'s reader index to `length` bytes in all (`storeLength`).
    static func setLength(_ length: Int, isIPv6: Bool, ipHeaderLength: Int, in buffer: inout ByteBuffer) {
        buffer.withUnsafeMutableReadableBytes { raw in
            storeLength(length, isIPv6: isIPv6, ipHeaderLength: ipHeaderLength, into: raw)
        }
    }

    /// Sets the IP length of the packet whose bytes `raw` starts with to `length` bytes in all: IPv4's total
    /// length (and its header checksum, after `identification` when given), IPv6's payload length. In the
    /// bytes, for a writer that builds a packet in one access.
    static func storeLength(_ length: Int, isIPv6: Bool, ipHeaderLength: Int, identification: UInt16? = nil,
                            into raw: UnsafeMutableRawBufferPointer) {
        if isIPv6 {
            raw.storeBytes(of: UInt16(length - ipHeaderLength).bigEndian, toByteOffset: 4, as: UInt16.self)
            return
        }
        raw.storeBytes(of: UInt16(length).bigEndian, toByteOffset: 2, as: UInt16.self)
        if let identification { raw.storeBytes(of: identification.bigEndian, toByteOffset: 4, as: UInt16.self) }
        raw.storeBytes(of: UInt16(0), toByteOffset: 10, as: UInt16.self)
        let sum = IPv4Packet.onesComplementSum(UnsafeRawBufferPointer(rebasing: raw[..<ipHeaderLength]))
        raw.storeBytes(of: (~IPv4Packet.fold(sum)).bigEndian, toByteOffset: 10, as: UInt16.self)
    }
}
