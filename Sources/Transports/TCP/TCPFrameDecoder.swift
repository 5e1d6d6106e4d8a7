import NIOCore

/// Cuts a stream transport's byte stream into packets: each frame is a 2-byte big-endian length, then that many
/// bytes of packet.
///
/// Robust to partial reads (waits for the rest) and to several frames in one read (delivers each, in order, as
/// a slice of the read buffer: no copy). A frame length of 0, or one above `maximumFrameLength`, is a protocol
/// error: the decoder throws, and `TCPConnectionHandler` closes the connection and counts it. Bytes of an
/// unfinished frame when the connection ends are reported as `truncatedAtClose`.
struct TCPFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer

    /// A violation of the framing by the peer.
    enum FrameError: Error, Equatable, Sendable {
        /// A frame announced 0 bytes (no packet is empty).
        case emptyFrame
        /// A frame announced more than the limit.
        case frameTooLong(length: Int, limit: Int)
        /// The connection ended inside a frame; `bytes` were left over.
        case truncatedAtClose(bytes: Int)
    }

    /// The length prefix: 2 bytes, big-endian.
    static let headerSize = 2

    /// Frames announcing more are refused.
    let maximumFrameLength: Int

    init(maximumFrameLength: Int) {
        self.maximumFrameLength = maximumFrameLength
    }

    /// The next whole frame's packet from `buffer` (moving past it), or nil when the frame is not complete yet
    /// (nothing is consumed then).
    static func nextFrame(in buffer: inout ByteBuffer, maximumLength: Int) throws(FrameError) -> ByteBuffer? {
        guard let length = buffer.getInteger(at: buffer.readerIndex, endianness: .big, as: UInt16.self) else {
            return nil
        }
        guard length > 0 else { throw .emptyFrame }
        guard Int(length) <= maximumLength else { throw .frameTooLong(length: Int(length), limit: maximumLength) }
        guard buffer.readableBytes >= headerSize + Int(length) else { return nil }
        buffer.moveReaderIndex(forwardBy: headerSize)
        return buffer.readSlice(length: Int(length))
    }

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let packet = try Self.nextFrame(in: &buffer, maximumLength: maximumFrameLength) else {
            return .needMoreData
        }
        context.fireChannelRead(Self.wrapInboundOut(packet))
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        let leftover = buffer.readableBytes
        if leftover > 0 {
            buffer.moveReaderIndex(forwardBy: leftover)
            throw FrameError.truncatedAtClose(bytes: leftover)
        }
        return .needMoreData
    }
}
