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
    /// `gsoType`: one packet, or a TCP/IPv4 or TCP/IPv6 super-segment to be cut into `gsoSize`-byte segments.
    static let gsoNone: UInt8 = 0
    static let gsoTCPv4: UInt8 = 1
    static let gsoTCPv6: UInt8 = 4
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
/// 64 KB and leaves transport checksums partial, as it would for a network card. A super-segment is handed
/// up with its segment size: the virtual interface cuts it into MTU-sized segments, one overlay packet each
/// (`TCPSegmenter`), so that a lost underlay datagram costs one segment. A partial checksum of a single
/// packet is completed here.
///
/// Write side: every TCP packet is written with a partial checksum (`needsChecksum`, the pseudo-header's sum
/// in the field) and, when it holds more than one segment (segments the virtual interface put back together,
/// `TCPCoalescer`, or a super-segment a peer sent whole), as a super-segment; the kernel then takes it as a
/// network card's receive offload would hand it up, in one piece, with nothing to verify. Whatever checksum
/// the sender's host left in a TCP packet is not looked at: the overlay's AEAD already guarantees that the
/// bytes are the ones the peer sent.
enum TunOffload {
    /// The packet (after the header) in `buffer`, made ready for the overlay and passed to `deliver` once,
    /// with its segment size when it is a TCP super-segment. Returns why it was dropped instead, or nil.
    static func fromHost(_ buffer: ByteBuffer, deliver: (ByteBuffer, Int?) -> Void) -> String? {
        var packet = buffer
        return fromHost(&packet, deliver: deliver)
    }

    /// The same, in `packet`'s own storage when it holds it alone (the TUN reader's buffer): the header is
    /// skipped and a checksum completed there, without a copy.
    static func fromHost(_ packet: inout ByteBuffer, deliver: (ByteBuffer, Int?) -> Void) -> String? {
        guard let header = VirtioNetHeader.read(from: &packet) else { return "offload_truncated" }
        switch header.gsoType & ~VirtioNetHeader.gsoECN {
        case VirtioNetHeader.gsoNone:
            if header.flags & VirtioNetHeader.needsChecksum != 0 {
                guard completeChecksum(&packet, start: Int(header.checksumStart),
                                       offset: Int(header.checksumOffset)) else { return "offload_bad_checksum_offset" }
            }
            deliver(packet, nil)
        case VirtioNetHeader.gsoTCPv4, VirtioNetHeader.gsoTCPv6:
            guard header.gsoSize > 0, let tcp = TCPHeaders(packet), tcp.payloadLength > 0,
                  tcp.isIPv6 == (header.gsoType & ~VirtioNetHeader.gsoECN == VirtioNetHeader.gsoTCPv6) else {
                return "offload_bad_super_segment"
            }
            deliver(packet, Int(header.gsoSize))
        default:
            // Only TCP segmentation is switched on (`TunDevice.offloadFlags`).
            return "offload_unexpected_gso"
        }
        return nil
    }

    /// The header to write before `packet`, and for a TCP packet the partial checksum to put in its checksum
    /// field (at `header.checksumStart + 16`). A TCP packet of more than one segment goes as a super-segment
    /// of `segmentSize`-byte segments (by default: as many as fit the MTU). Anything else is written as it
    /// is, behind an empty header.
    static func toHost(_ packet: ByteBuffer, mtu: Int, segmentSize: Int? = nil) -> (header: VirtioNetHeader, partialChecksum: UInt16?) {
        guard let tcp = TCPHeaders(packet) else { return (VirtioNetHeader(), nil) }
        var header = VirtioNetHeader()
        header.flags = VirtioNetHeader.needsChecksum
        header.checksumStart = UInt16(tcp.ipHeaderLength)
        header.checksumOffset = TCPHeaders.checksumOffset
        let segment = segmentSize ?? (mtu - tcp.headersLength)
        if segment > 0, tcp.payloadLength > segment {
            header.gsoType = (tcp.isIPv6 ? VirtioNetHeader.gsoTCPv6 : VirtioNetHeader.gsoTCPv4)
                | (tcp.flags & TCPHeaders.cwr != 0 ? VirtioNetHeader.gsoECN : 0)
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
        // In UDP a zero checksum means "none": the computed zero is sent as all ones (RFC 768, RFC 8200).
        let isIPv6 = packet.getInteger(at: packet.readerIndex, as: UInt8.self).map { $0 >> 4 == 6 } ?? false
        if checksum == 0, packet.getInteger(at: packet.readerIndex + (isIPv6 ? 6 : 9), as: UInt8.self) == IPv4Packet.udpProtocol {
            checksum = 0xFFFF
        }
        packet.setInteger(checksum, at: packet.readerIndex + start + offset)
        return true
    }
}
