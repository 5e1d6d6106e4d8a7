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

    /// The size of fragment `index` (header and piece) of a packet of `size` bytes.
    static func fragmentSize(_ index: Int, ofPacketSize size: Int, pieceSize: Int = UDPFragmenter.pieceSize) -> Int {
        FragmentPacket.headerSize + min(pieceSize, size - index * pieceSize)
    }

    /// Writes fragment `index` of `count` of the packet whose bytes are `packet`, header and piece, in one access
    /// (`fragmentSize` bytes).
    static func writeFragment(_ index: Int, of count: Int, messageID: UInt32, packet: UnsafeRawBufferPointer,
                              pieceSize: Int = UDPFragmenter.pieceSize, into buffer: inout ByteBuffer) {
        let offset = index * pieceSize
        let length = min(pieceSize, packet.count - offset)
        precondition(length > 0, "a fragment past the packet's end")
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: FragmentPacket.headerSize + length) { raw in
            FragmentPacket.storeHeader(messageID: messageID, index: index, count: count, into: raw)
            UnsafeMutableRawBufferPointer(rebasing: raw[FragmentPacket.headerSize...])
                .copyMemory(from: UnsafeRawBufferPointer(rebasing: packet[offset..<(offset + length)]))
            return FragmentPacket.headerSize + length
        }
    }

    /// The fragment datagrams of `packet` (at most `WireFormat.maximumPacketSize` bytes) back to back in one
    /// buffer, each `FragmentPacket.headerSize + pieceSize` bytes but the last (tests and fuzzing: the
    /// listener writes each fragment into its send batch).
    static func fragments(of packet: ByteBuffer, messageID: UInt32, pieceSize: Int = UDPFragmenter.maximumPieceSize,
                          allocator: ByteBufferAllocator) -> ByteBuffer {
        let size = packet.readableBytes
        let count = fragmentCount(forPacketSize: size, pieceSize: pieceSize)
        var buffer = allocator.buffer(capacity: size + count * FragmentPacket.headerSize)
        packet.withUnsafeReadableBytes { bytes in
            for index in 0..<count {
                writeFragment(index, of: count, messageID: messageID, packet: bytes, pieceSize: pieceSize, into: &buffer)
            }
        }
        return buffer
    }
}
