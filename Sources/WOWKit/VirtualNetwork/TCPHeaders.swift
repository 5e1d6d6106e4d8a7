import NIOCore

/// The IPv4 and TCP headers of a well-formed, unfragmented TCP/IPv4 packet at a buffer's reader index: what
/// segmentation, coalescing and the TUN device's checksum offload need to know, read in place.
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
    /// The IP total length (the packet may be followed by padding in its buffer).
    public let totalLength: Int
    public let flags: UInt8
    public let source: UInt32
    public let destination: UInt32

    public var headersLength: Int { ipHeaderLength + tcpHeaderLength }
    public var payloadLength: Int { totalLength - headersLength }

    /// Nil unless `packet` is a TCP/IPv4 packet with a whole TCP header (not a fragment).
    public init?(_ packet: ByteBuffer) {
        guard case .success(let ip) = IPv4Packet.header(of: packet), ip.protocolNumber == IPv4Packet.tcpProtocol else {
            return nil
        }
        let start = packet.readerIndex
        // A fragment has no TCP header of its own (offset > 0) or not all of its bytes (more fragments).
        guard packet.getInteger(at: start + 6, as: UInt16.self)! & 0x3FFF == 0,
              ip.totalLength >= ip.headerLength + 20 else { return nil }
        let tcpHeaderLength = Int(packet.getInteger(at: start + ip.headerLength + 12, as: UInt8.self)! >> 4) * 4
        guard tcpHeaderLength >= 20, ip.headerLength + tcpHeaderLength <= ip.totalLength else { return nil }
        ipHeaderLength = ip.headerLength
        self.tcpHeaderLength = tcpHeaderLength
        totalLength = ip.totalLength
        flags = packet.getInteger(at: start + ip.headerLength + 13, as: UInt8.self)!
        source = ip.source.ipv4!
        destination = ip.destination.ipv4!
    }

    /// What a partial checksum field holds: the pseudo-header's sum, folded, not complemented.
    public func partialChecksum(transportLength: Int) -> UInt16 {
        IPv4Packet.fold(IPv4Packet.pseudoHeaderSum(source: source, destination: destination,
                                                   protocolNumber: IPv4Packet.tcpProtocol, length: transportLength))
    }

    /// Recomputes the IPv4 header checksum of the packet at `buffer`'s reader index (header `length` bytes).
    static func updateIPHeaderChecksum(in buffer: inout ByteBuffer, headerLength length: Int) {
        let start = buffer.readerIndex
        buffer.setInteger(UInt16(0), at: start + 10)
        let sum = buffer.withUnsafeReadableBytes { bytes in
            IPv4Packet.onesComplementSum(UnsafeRawBufferPointer(rebasing: bytes[..<length]))
        }
        buffer.setInteger(~IPv4Packet.fold(sum), at: start + 10)
    }
}
