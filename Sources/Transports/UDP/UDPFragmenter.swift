import NIOCore
import WOWKit

/// Splits a packet too large for one datagram into fragment datagrams (`FragmentPacket`): `count` fragments of
/// one message id, piece `index` holding the packet's bytes from `index × maximumPieceSize` on, every piece
/// but the last exactly `maximumPieceSize` bytes, so every datagram but the last is exactly
/// `UDPTransport.maximumDatagramSize` bytes (what a GSO write needs).
enum UDPFragmenter {
    /// The packet bytes in a full fragment (1,452 − 8 = 1,444).
    static let maximumPieceSize = UDPTransport.maximumDatagramSize - FragmentPacket.headerSize
    /// Fragments of the largest packet (65,535 bytes: 46), the most a receiver accepts for a message.
    static let maximumFragmentCount = (WireFormat.maximumPacketSize + maximumPieceSize - 1) / maximumPieceSize
    /// Full datagrams per GSO write (45): the kernel takes one write as one UDP payload, at most 65,507 bytes
    /// (65,535 − 20 IPv4 − 8 UDP), so the largest packet's 46 fragments take two writes.
    static let maximumSegmentsPerWrite = 65_507 / UDPTransport.maximumDatagramSize

    /// Whether `packet` goes as fragments: it is over one datagram, or it starts like a fragment (then it goes
    /// as one fragment of count 1, so that the receiver does not take it for one).
    static func needsFragments(_ packet: ByteBuffer) -> Bool {
        packet.readableBytes > UDPTransport.maximumDatagramSize || FragmentPacket.matches(packet)
    }

    /// How many fragments a packet of `size` bytes takes (at least 1).
    static func fragmentCount(forPacketSize size: Int) -> Int {
        max(1, (size + maximumPieceSize - 1) / maximumPieceSize)
    }

    /// The fragment datagrams of `packet` (at most `WireFormat.maximumPacketSize` bytes) back to back in one
    /// buffer: datagram `i` is at `i × UDPTransport.maximumDatagramSize`.
    static func fragments(of packet: ByteBuffer, messageID: UInt32, allocator: ByteBufferAllocator) -> ByteBuffer {
        let size = packet.readableBytes
        let count = fragmentCount(forPacketSize: size)
        var buffer = allocator.buffer(capacity: size + count * FragmentPacket.headerSize)
        var offset = packet.readerIndex
        for index in 0..<count {
            let length = min(maximumPieceSize, size - index * maximumPieceSize)
            buffer.writeInteger(WireFormat.version)
            buffer.writeInteger(FragmentPacket.kind)
            buffer.writeInteger(messageID, endianness: .big)
            buffer.writeInteger(UInt8(index))
            buffer.writeInteger(UInt8(count))
            // In range: `offset + length` never passes the packet's writer index.
            if let piece = packet.getSlice(at: offset, length: length) { buffer.writeImmutableBuffer(piece) }
            offset += length
        }
        return buffer
    }
}
