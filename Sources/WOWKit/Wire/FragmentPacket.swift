import NIOCore

/// The fragment datagram of datagram transports: `version` (0x01), kind 0x09, then `message_id:u32 index:u8
/// count:u8` and a piece of a packet (docs/protocol.md, "Fragment").
///
/// A transport whose datagrams are smaller than `WireFormat.maximumPacketSize` (the `udp` transport) sends a
/// larger packet as `count` fragments carrying consecutive pieces of it, and puts them back together before
/// the packet reaches an edge. Like the punch packet it is not an `EdgeMessage`: the node never sees one.
public enum FragmentPacket {
    /// The kind byte, reserved in the edge-message kind table.
    public static let kind: UInt8 = 0x09
    /// Bytes before the piece: version, kind, message id (u32), index (u8), count (u8).
    public static let headerSize = 8

    /// Whether `datagram` starts like a fragment (`version`, 0x09), whatever follows. Reads without consuming.
    @inlinable
    public static func matches(_ datagram: ByteBuffer) -> Bool {
        guard let bytes = datagram.getInteger(at: datagram.readerIndex, endianness: .big, as: UInt16.self) else {
            return false
        }
        return bytes == UInt16(WireFormat.version) << 8 | UInt16(kind)
    }

    /// Writes a fragment's header: version, kind, `messageID`, `index`, `count` (both below 256).
    public static func writeHeader(messageID: UInt32, index: Int, count: Int, into buffer: inout ByteBuffer) {
        buffer.writeInteger(WireFormat.version)
        buffer.writeInteger(kind)
        buffer.writeInteger(messageID, endianness: .big)
        buffer.writeInteger(UInt8(truncatingIfNeeded: index))
        buffer.writeInteger(UInt8(truncatingIfNeeded: count))
    }
}
