import NIOCore

/// The payload of a `tunnel` routed packet: one frame of an edge that is tunnelled through the overlay.
///
/// `via:20 return_via:20 frame...`. The packet is routed first to `via` (a node connected directly to the
/// destination; all zeros when there is none to name), which passes it straight to the destination;
/// `returnVia` is a node connected directly to the sender, through which the destination sends back.
/// Tunnel packets only ever cross direct (not tunnelled) connections, so a tunnel never rides another.
public struct TunnelFrame: Equatable, Sendable {
    /// The fixed part before the frame.
    public static let overhead = 2 * Address.byteCount

    public var via: Address
    public var returnVia: Address
    /// The edge's packet, opaque to the overlay.
    public var frame: ByteBuffer

    public init(via: Address, returnVia: Address, frame: ByteBuffer) {
        self.via = via
        self.returnVia = returnVia
        self.frame = frame
    }

    public func encoded() -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(TunnelFrame.overhead + frame.readableBytes)
        buffer.writeAddress(via)
        buffer.writeAddress(returnVia)
        var frame = frame
        buffer.writeBuffer(&frame)
        return buffer
    }

    public static func decode(_ buffer: ByteBuffer) throws(WireError) -> TunnelFrame {
        var reader = WireReader(buffer)
        let via = try reader.address("via")
        let returnVia = try reader.address("return_via")
        let frame = reader.buffer.readSlice(length: reader.buffer.readableBytes) ?? ByteBuffer()
        return TunnelFrame(via: via, returnVia: returnVia, frame: frame)
    }

    /// Only the `via` field, without copying the frame (what routers need).
    public static func via(in payload: ByteBuffer) -> Address? {
        var reader = WireReader(payload)
        return try? reader.address("via")
    }
}
