import NIOCore

/// The hole-punch packet: two bytes, `version` (0x01) and kind 0x08, nothing else (docs/protocol.md, "Punch
/// packet").
///
/// A `HolePunchingEdge` sends it with a small IP TTL so that it opens the sender's own NAT and dies before
/// the far one. It is not an `EdgeMessage`: when one does arrive (on a LAN, on loopback, or when the TTL
/// outlasts the path), the receiving transport recognises it with `matches` and drops it silently, before
/// any edge is made for its sender, so the node never sees it.
public enum PunchPacket {
    /// The kind byte, reserved in the edge-message kind table.
    public static let kind: UInt8 = 0x08
    /// Every punch packet is exactly this long.
    public static let size = 2
    /// How many punch packets a `HolePunchingEdge` sends per punch (one may be lost on the LAN).
    public static let countPerPunch = 2

    /// A fresh punch packet.
    public static func make(allocator: ByteBufferAllocator = ByteBufferAllocator()) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: size)
        buffer.writeInteger(WireFormat.version)
        buffer.writeInteger(kind)
        return buffer
    }

    /// Whether `packet` is a punch packet: exactly the two bytes above. Reads without consuming.
    @inlinable
    public static func matches(_ packet: ByteBuffer) -> Bool {
        guard packet.readableBytes == 2,
              let bytes = packet.getInteger(at: packet.readerIndex, endianness: .big, as: UInt16.self) else { return false }
        return bytes == UInt16(WireFormat.version) << 8 | UInt16(kind)
    }
}
