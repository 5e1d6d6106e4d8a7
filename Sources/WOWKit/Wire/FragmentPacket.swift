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
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: headerSize) { raw in
            storeHeader(messageID: messageID, index: index, count: count, into: raw)
            return headerSize
        }
    }

    /// Stores a fragment's header at the start of `raw` (at least `headerSize` bytes): for a writer that puts
    /// the header and the piece in one access.
    @inlinable
    public static func storeHeader(messageID: UInt32, index: Int, count: Int, into raw: UnsafeMutableRawBufferPointer) {
        precondition(raw.count >= headerSize, "no room for a fragment header")
        raw[0] = WireFormat.version
        raw[1] = kind
        raw.storeBytes(of: messageID.bigEndian, toByteOffset: 2, as: UInt32.self)
        raw[6] = UInt8(truncatingIfNeeded: index)
        raw[7] = UInt8(truncatingIfNeeded: count)
    }

    /// A fragment's header fields (after `matches`), read in one access; nil when shorter than the header.
    @inlinable
    public static func header(of datagram: ByteBuffer) -> (messageID: UInt32, index: Int, count: Int)? {
        guard datagram.readableBytes >= headerSize else { return nil }
        return datagram.withUnsafeReadableBytes { raw in
            (UInt32(bigEndian: raw.loadUnaligned(fromByteOffset: 2, as: UInt32.self)), Int(raw[6]), Int(raw[7]))
        }
    }
}
