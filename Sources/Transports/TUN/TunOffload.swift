import NIOCore
import WOWKit

/// The `struct virtio_net_hdr` that a TUN device opened with IFF_VNET_HDR puts before every packet it hands
/// up and expects before every packet written to it (Linux include/uapi/linux/virtio_net.h; the fields are in
/// the host's byte order).
struct VirtioNetHeader: Equatable {
    static let size = 10
    /// `flags`: the transport checksum is partial (the pseudo-header's sum is in the field): sum the packet
    /// from `checksumStart` and store the result `checksumOffset` bytes further.
    static let needsChecksum: UInt8 = 1
    /// `gsoType`: one packet, or a TCP/IPv4 super-segment to be cut into `gsoSize`-byte segments.
    static let gsoNone: UInt8 = 0
    static let gsoTCPv4: UInt8 = 1
    /// Or-ed into `gsoType`: the super-segment's first segment carries CWR.
    static let gsoECN: UInt8 = 0x80

    var flags: UInt8 = 0
    var gsoType: UInt8 = 0
    var headerLength: UInt16 = 0
    var gsoSize: UInt16 = 0
    var checksumStart: UInt16 = 0
    var checksumOffset: UInt16 = 0

    /// Reads the header at the buffer's reader index and moves past it; nil when the buffer is shorter.
    static func read(from buffer: inout ByteBuffer) -> VirtioNetHeader? {
        guard buffer.readableBytes >= size else { return nil }
        var header = VirtioNetHeader()
        header.flags = buffer.readInteger(as: UInt8.self)!
        header.gsoType = buffer.readInteger(as: UInt8.self)!
        header.headerLength = buffer.readInteger(endianness: .host, as: UInt16.self)!
        header.gsoSize = buffer.readInteger(endianness: .host, as: UInt16.self)!
        header.checksumStart = buffer.readInteger(endianness: .host, as: UInt16.self)!
        header.checksumOffset = buffer.readInteger(endianness: .host, as: UInt16.self)!
        return header
    }

    /// Writes the header's 10 bytes to the start of `bytes`.
    func write(to bytes: UnsafeMutableRawBufferPointer) {
        bytes[0] = flags
        bytes[1] = gsoType
        bytes.storeBytes(of: headerLength, toByteOffset: 2, as: UInt16.self)
        bytes.storeBytes(of: gsoSize, toByteOffset: 4, as: UInt16.self)
        bytes.storeBytes(of: checksumStart, toByteOffset: 6, as: UInt16.self)
        bytes.storeBytes(of: checksumOffset, toByteOffset: 8, as: UInt16.self)
    }
}

/// What the TUN device's offloads mean for the packets crossing it, without I/O (tested without a device).
///
/// Read side: with checksum and TCP segmentation offload on, the kernel hands up TCP super-segments of up to
/// 64 KB and leaves transport checksums partial, as it would for a network card. A super-segment crosses
/// the overlay as ONE packet (one route, one seal; the udp transport cuts it into datagrams that are never
/// IP-fragmented); a partial checksum of a single packet is completed here.
///
/// Write side: every TCP packet is written with a partial checksum (`needsChecksum`, the pseudo-header's sum
/// in the field) and, when larger than the device's MTU, as a super-segment; the kernel then takes it as a
/// network card's receive offload would hand it up, in one piece, with nothing to verify. Whatever checksum
/// the sender's host left in a TCP packet is not looked at: the overlay's AEAD already guarantees that the
/// bytes are the ones the peer sent.
enum TunOffload {
    /// The packet (after the header) in `buffer`, made ready for the overlay: passed to `deliver` once, or,
    /// for a super-segment over `maximumLength` bytes, as several smaller super-segments. Returns why it was
    /// dropped instead, or nil.
    static func fromHost(_ buffer: ByteBuffer, maximumLength: Int, deliver: (ByteBuffer) -> Void) -> String? {
        var packet = buffer
        return fromHost(&packet, maximumLength: maximumLength, deliver: deliver)
    }

    /// The same, in `packet`'s own storage when it holds it alone (the TUN reader's buffer): the header is
    /// skipped and a checksum completed there, without a copy.
    static func fromHost(_ packet: inout ByteBuffer, maximumLength: Int, deliver: (ByteBuffer) -> Void) -> String? {
        guard let header = VirtioNetHeader.read(from: &packet) else { return "offload_truncated" }
        switch header.gsoType & ~VirtioNetHeader.gsoECN {
        case VirtioNetHeader.gsoNone:
            if header.flags & VirtioNetHeader.needsChecksum != 0 {
                guard completeChecksum(&packet, start: Int(header.checksumStart),
                                       offset: Int(header.checksumOffset)) else { return "offload_bad_checksum_offset" }
            }
            deliver(packet)
        case VirtioNetHeader.gsoTCPv4:
            guard packet.readableBytes > maximumLength else {
                deliver(packet)
                return nil
            }
            guard split(packet, segmentSize: Int(header.gsoSize), maximumLength: maximumLength, deliver: deliver) else {
                return "offload_bad_super_segment"
            }
        default:
            // Only TCP/IPv4 segmentation is switched on (`TunDevice.offloadFlags`).
            return "offload_unexpected_gso"
        }
        return nil
    }

    /// The header to write before `packet`, and for a TCP packet the partial checksum to put in its checksum
    /// field (at `header.checksumStart + 16`). Anything else is written as it is, behind an empty header.
    static func toHost(_ packet: ByteBuffer, mtu: Int) -> (header: VirtioNetHeader, partialChecksum: UInt16?) {
        guard let tcp = TCPHeaders(packet) else { return (VirtioNetHeader(), nil) }
        var header = VirtioNetHeader()
        header.flags = VirtioNetHeader.needsChecksum
        header.checksumStart = UInt16(tcp.ipHeaderLength)
        header.checksumOffset = TCPHeaders.checksumOffset
        let segment = mtu - tcp.headersLength
        if tcp.totalLength > mtu, segment > 0 {
            header.gsoType = VirtioNetHeader.gsoTCPv4 | (tcp.flags & TCPHeaders.cwr != 0 ? VirtioNetHeader.gsoECN : 0)
            header.gsoSize = UInt16(segment)
            header.headerLength = UInt16(tcp.headersLength)
        }
        return (header, tcp.partialChecksum(transportLength: tcp.totalLength - tcp.ipHeaderLength))
    }

    /// Completes a partial checksum: the ones' complement sum from `start` to the end (the field already
    /// holds the pseudo-header's sum), complemented, stored at `start + offset`. False when the offsets do
    /// not fit the packet.
    static func completeChecksum(_ packet: inout ByteBuffer, start: Int, offset: Int) -> Bool {
        let count = packet.readableBytes
        guard start + offset + 2 <= count else { return false }
        let sum = packet.withUnsafeReadableBytes { bytes in
            IPv4Packet.onesComplementSum(UnsafeRawBufferPointer(rebasing: bytes[start...]))
        }
        var checksum = ~IPv4Packet.fold(sum)
        // In UDP a zero checksum means "none": the computed zero is sent as all ones (RFC 768).
        if checksum == 0, packet.getInteger(at: packet.readerIndex + 9, as: UInt8.self) == IPv4Packet.udpProtocol {
            checksum = 0xFFFF
        }
        packet.setInteger(checksum, at: packet.readerIndex + start + offset)
        return true
    }

    /// Cuts a TCP/IPv4 super-segment into super-segments of at most `maximumLength` bytes, each a whole number
    /// of `segmentSize`-byte segments but the last, as the kernel's own segmentation would: sequence numbers,
    /// IP identification, lengths and header checksum follow; FIN and PSH only on the last, CWR only on the
    /// first; the TCP checksum partial. False if it is no such super-segment.
    static func split(_ packet: ByteBuffer, segmentSize: Int, maximumLength: Int, deliver: (ByteBuffer) -> Void) -> Bool {
        guard let tcp = TCPHeaders(packet), segmentSize > 0 else { return false }
        let headers = tcp.headersLength
        let perPiece = (maximumLength - headers) / segmentSize * segmentSize
        let payload = tcp.totalLength - headers
        guard perPiece > 0, payload > 0 else { return false }
        let start = packet.readerIndex
        let identification = packet.getInteger(at: start + 4, as: UInt16.self)!
        let sequence = packet.getInteger(at: start + tcp.ipHeaderLength + 4, as: UInt32.self)!
        var offset = 0
        while offset < payload {
            let length = min(perPiece, payload - offset)
            var piece = ByteBufferAllocator().buffer(capacity: headers + length)
            piece.writeImmutableBuffer(packet.getSlice(at: start, length: headers)!)
            piece.writeImmutableBuffer(packet.getSlice(at: start + headers + offset, length: length)!)
            piece.setInteger(UInt16(headers + length), at: 2)
            piece.setInteger(identification &+ UInt16(truncatingIfNeeded: offset / segmentSize), at: 4)
            piece.setInteger(UInt16(0), at: 10)
            let headerSum = piece.withUnsafeReadableBytes { bytes in
                IPv4Packet.onesComplementSum(UnsafeRawBufferPointer(rebasing: bytes[..<tcp.ipHeaderLength]))
            }
            piece.setInteger(~IPv4Packet.fold(headerSum), at: 10)
            piece.setInteger(sequence &+ UInt32(offset), at: tcp.ipHeaderLength + 4)
            var flags = tcp.flags
            if offset > 0 { flags &= ~TCPHeaders.cwr }
            if offset + length < payload { flags &= ~(TCPHeaders.fin | TCPHeaders.psh) }
            piece.setInteger(flags, at: tcp.ipHeaderLength + 13)
            piece.setInteger(tcp.partialChecksum(transportLength: tcp.tcpHeaderLength + length),
                             at: tcp.ipHeaderLength + Int(TCPHeaders.checksumOffset))
            deliver(piece)
            offset += length
        }
        return true
    }
}

/// The IPv4 and TCP headers of a well-formed, unfragmented TCP/IPv4 packet at a buffer's reader index.
struct TCPHeaders {
    static let checksumOffset: UInt16 = 16
    static let fin: UInt8 = 0x01
    static let psh: UInt8 = 0x08
    static let cwr: UInt8 = 0x80

    let ipHeaderLength: Int
    let tcpHeaderLength: Int
    let totalLength: Int
    let flags: UInt8
    let source: UInt32
    let destination: UInt32

    var headersLength: Int { ipHeaderLength + tcpHeaderLength }

    init?(_ packet: ByteBuffer) {
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
        source = ip.source.value
        destination = ip.destination.value
    }

    /// What a partial checksum field holds: the pseudo-header's sum, folded, not complemented.
    func partialChecksum(transportLength: Int) -> UInt16 {
        IPv4Packet.fold(IPv4Packet.pseudoHeaderSum(source: source, destination: destination,
                                                   protocolNumber: IPv4Packet.tcpProtocol, length: transportLength))
    }
}
