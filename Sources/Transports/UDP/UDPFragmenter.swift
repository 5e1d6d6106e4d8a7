import NIOCore
import WOWKit

/// Splits a packet too large for one datagram into fragments (`FragmentPacket`): `count` fragments of one
/// message id, piece `index` holding the packet's bytes from `index × pieceSize` on, every piece but the last
/// exactly `pieceSize` bytes. The listener sends each fragment as the body of a data datagram
/// (`FECPacket`), so every datagram but the last is exactly `UDPTransport.maximumDatagramSize` bytes (what a
/// GSO write needs).
enum UDPFragmenter {
    /// The packet bytes a receiver takes in one fragment (1,452 − 8 = 1,444): a fragment datagram on its own.
    static let maximumPieceSize = UDPTransport.maximumDatagramSize - FragmentPacket.headerSize
    /// The packet bytes this transport puts in a fragment (1,443 − 8 = 1,435): room for the data header.
    static let pieceSize = FECEncoder.maximumBodySize - FragmentPacket.headerSize
    /// Fragments of the largest packet (65,535 bytes: 46), the most a receiver accepts for a message.
    static let maximumFragmentCount = (WireFormat.maximumPacketSize + pieceSize - 1) / pieceSize
    /// Full datagrams per GSO write (45): the kernel takes one write as one UDP payload, at most 65,507 bytes
    /// (65,535 − 20 IPv4 − 8 UDP), so the largest packet's 46 fragments take two writes.
    static let maximumSegmentsPerWrite = 65_507 / UDPTransport.maximumDatagramSize

    /// Whether `packet` goes as fragments: it is over one datagram's body, or it starts like a fragment (then
    /// it goes as one fragment of count 1, so that the receiver does not take it for one).
    static func needsFragments(_ packet: ByteBuffer) -> Bool {
        packet.readableBytes > FECEncoder.maximumBodySize || FragmentPacket.matches(packet)
    }

    /// How many fragments a packet of `size` bytes takes (at least 1).
    static func fragmentCount(forPacketSize size: Int, pieceSize: Int = UDPFragmenter.pieceSize) -> Int {
        max(1, (size + pieceSize - 1) / pieceSize)
    }

    /// Fragment `index` of `count` of `packet`: its piece (a slice, not a copy).
    static func piece(_ index: Int, of packet: ByteBuffer, pieceSize: Int = UDPFragmenter.pieceSize) -> ByteBuffer {
        let offset = index * pieceSize
        let length = min(pieceSize, packet.readableBytes - offset)
        // In range: `offset + length` never passes the packet's end.
        return packet.getSlice(at: packet.readerIndex + offset, length: length) ?? ByteBuffer()
    }

    /// The fragment datagrams of `packet` (at most `WireFormat.maximumPacketSize` bytes) back to back in one
    /// buffer, each `FragmentPacket.headerSize + pieceSize` bytes but the last (tests and fuzzing: the
    /// listener writes each fragment into its send batch).
    static func fragments(of packet: ByteBuffer, messageID: UInt32, pieceSize: Int = UDPFragmenter.maximumPieceSize,
                          allocator: ByteBufferAllocator) -> ByteBuffer {
        let size = packet.readableBytes
        let count = fragmentCount(forPacketSize: size, pieceSize: pieceSize)
        var buffer = allocator.buffer(capacity: size + count * FragmentPacket.headerSize)
        for index in 0..<count {
            FragmentPacket.writeHeader(messageID: messageID, index: index, count: count, into: &buffer)
            buffer.writeImmutableBuffer(piece(index, of: packet, pieceSize: pieceSize))
        }
        return buffer
    }
}
