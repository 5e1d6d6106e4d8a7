import NIOCore
import WOWKit

/// An edge of the `tcp` or `tls` transport: one TCP connection (inside TLS for `tls`). Made by
/// `TCPEdgeListener`, inbound when a peer's connection is up, outbound by `createEdge`.
///
/// Follows the `Edge` contract, on the listener's event loop:
/// - `send` frames the packet (a 2-byte big-endian length, then the bytes; no copy of the packet) and queues it;
///   one flush per event-loop tick sends everything queued on the edge. Dropped and counted on the listener:
///   empty packets (`empty`) and packets over the listener's maximum, 65,535 bytes (`oversized`), sends on a
///   closed edge (`edge_closed`), and sends while more than `TCPEdgeListener.maximumQueuedBytes` wait for the
///   socket (`backpressure`).
/// - Each received frame is one `didReceive`.
/// - `close` closes the connection and reports `edgeDidClose` once, scheduled on the loop. The connection
///   ending by itself (the peer closed or reset it, a framing violation, a TLS error) closes the edge the same
///   way. The delegate is held strongly until `edgeDidClose` and released after it.
public final class TCPEdge: Edge {
    public var transport: String { listener.scheme }
    public let localURI: TransportURI
    public let remoteURI: TransportURI
    public let isInbound: Bool
    public private(set) var isClosed = false
    public var delegate: (any EdgeDelegate)?

    let listener: TCPEdgeListener
    let channel: any Channel
    private var isFlushScheduled = false

    init(listener: TCPEdgeListener, channel: any Channel, localURI: TransportURI, remoteURI: TransportURI, isInbound: Bool) {
        self.listener = listener
        self.channel = channel
        self.localURI = localURI
        self.remoteURI = remoteURI
        self.isInbound = isInbound
    }

    public func send(_ packet: ByteBuffer) {
        guard !isClosed else { return listener.countDrop(.edgeClosed) }
        let size = packet.readableBytes
        guard size > 0 else { return listener.countDrop(.empty) }
        guard size <= listener.maximumPacketSize else { return listener.countDrop(.oversized) }
        guard channel.isWritable else { return listener.countDrop(.backpressure) }
        var header = channel.allocator.buffer(capacity: TCPFrameDecoder.headerSize)
        header.writeInteger(UInt16(size), endianness: .big)
        channel.write(header, promise: nil)
        channel.write(packet, promise: nil)
        listener.countSent(bytes: size)
        if !isFlushScheduled {
            isFlushScheduled = true
            channel.eventLoop.assumeIsolated().execute { [self] in
                isFlushScheduled = false
                channel.flush()
            }
        }
    }

    public func close() {
        shutDown()
    }

    /// The connection ended (from the channel handler).
    func connectionDidClose() {
        shutDown()
    }

    /// A packet from the connection (from the channel handler).
    func deliver(_ packet: ByteBuffer) {
        guard !isClosed else { return listener.countDrop(.edgeClosed) }
        listener.countReceived(bytes: packet.readableBytes)
        delegate?.edge(self, didReceive: packet)
    }

    private func shutDown() {
        guard !isClosed else { return }
        isClosed = true
        listener.remove(self)
        if isFlushScheduled { channel.flush() }
        channel.close(promise: nil)
        // Scheduled: `close` may be called from inside a delegate callback, which must not be re-entered.
        channel.eventLoop.assumeIsolated().execute { [self] in
            let delegate = self.delegate
            self.delegate = nil
            delegate?.edgeDidClose(self)
        }
    }
}
