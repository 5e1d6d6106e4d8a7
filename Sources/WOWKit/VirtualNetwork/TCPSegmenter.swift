import NIOCore

/// Cuts a TCP super-segment, over IPv4 or IPv6 (what a host's TCP hands a device with segmentation offload, up to 64 KB)
/// into the MTU-sized segments a network card would put on the wire (or into smaller super-segments of a few
/// segments each), so that each crosses the overlay as a packet of its own: a lost underlay datagram then
/// costs one piece, not the whole super-segment (`SegmentationPolicy` chooses the pieces' size).
///
/// Pure and I/O-free (tested with crafted packets). No allocation per segment: every segment is built in one
/// scratch buffer the caller keeps, and handed on before the next is built there.
public enum TCPSegmenter {
    /// Calls `body` with each segment of `packet` in order, each built in `scratch`: the headers of `packet`
    /// with the IP length (IPv4: total length, identification +1 per segment, header checksum; IPv6: payload
    /// length), sequence number (+ the payload
    /// bytes before it) and flags fixed as the kernel's segmentation fixes them (CWR only on the first, FIN
    /// and PSH only on the last), then `segmentSize` payload bytes (fewer in the last). The TCP checksum field
    /// holds the pseudo-header's sum for the segment's length: a partial checksum, as segmentation offload
    /// leaves it for the card (the overlay's AEAD protects the bytes; the receiving device completes it).
    ///
    /// A packet with no more than `segmentSize` payload bytes is handed on as it is, once. `body` must be
    /// done with the buffer when it returns; a copy it keeps stays intact (the next segment then goes to
    /// a new buffer: copy on write). Returns false, calling nothing, when `packet` is no TCP packet
    /// with a payload or `segmentSize` is below 1.
    ///
    /// With `segmentsPerPacket` above 1, each piece holds that many segments (a smaller super-segment, its
    /// identification advanced by the segments before it), the last piece what is left.
    @discardableResult
    public static func segments(of packet: ByteBuffer, segmentSize: Int, segmentsPerPacket: Int = 1,
                                scratch: inout ByteBuffer, _ body: (ByteBuffer) -> Void) -> Bool {
        guard let tcp = TCPHeaders(packet), segmentSize > 0, segmentsPerPacket > 0 else { return false }
        let payload = tcp.payloadLength
        let pieceSize = segmentSize * segmentsPerPacket
        guard payload > 0 else { return false }
        guard payload > pieceSize else {
            body(packet)
            return true
        }
        let start = packet.readerIndex
        let headers = tcp.headersLength
        let ipLength = tcp.ipHeaderLength
        let identification = tcp.isIPv6 ? 0 : packet.getInteger(at: start + 4, as: UInt16.self)!
        let sequence = tcp.sequence
        var offset = 0
        while offset < payload {
            let length = min(pieceSize, payload - offset)
            var flags = tcp.flags
            if offset > 0 { flags &= ~TCPHeaders.cwr }
            if offset + length < payload { flags &= ~(TCPHeaders.fin | TCPHeaders.psh) }
            let checksum = tcp.partialChecksum(transportLength: tcp.tcpHeaderLength + length)
            let id = identification &+ UInt16(truncatingIfNeeded: offset / segmentSize)
            scratch.clear()
            // Headers, payload and the fields to fix in one access of each buffer (separate ByteBuffer calls
            // each pay its checks, per segment).
            packet.withUnsafeReadableBytes { bytes in
                scratch.writeWithUnsafeMutableBytes(minimumWritableBytes: headers + length) { out in
                    out.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[..<headers]))
                    UnsafeMutableRawBufferPointer(rebasing: out[headers...]).copyMemory(
                        from: UnsafeRawBufferPointer(rebasing: bytes[(headers + offset)..<(headers + offset + length)]))
                    TCPHeaders.storeLength(headers + length, isIPv6: tcp.isIPv6, ipHeaderLength: ipLength,
                                           identification: id, into: out)
                    out.storeBytes(of: (sequence &+ UInt32(truncatingIfNeeded: offset)).bigEndian,
                                   toByteOffset: ipLength + 4, as: UInt32.self)
                    out[ipLength + 13] = flags
                    out.storeBytes(of: checksum.bigEndian, toByteOffset: ipLength + Int(TCPHeaders.checksumOffset),
                                   as: UInt16.self)
                    return headers + length
                }
            }
            body(scratch)
            offset += length
        }
        return true
    }
}
