import NIOCore
import WOWKit

/// An edge of the `udp` transport: the packets between one `UDPEdgeListener`'s socket and one remote
/// address. Made by the listener (inbound on a datagram from a new remote, outbound by `createEdge`).
///
/// Follows the `Edge` contract: everything on the node's event loop. `send` hands the buffer to the
/// listener's socket: in one data datagram (`FECPacket`) up to 1,443 bytes, as fragments in datagrams of at
/// most 1,452 bytes above (see `UDPEdgeListener`); a closed edge drops it, counted as `edge_closed`.
/// `close` removes the edge from its listener, so the remote's next datagram makes a new inbound edge, and
/// reports `edgeDidClose` once, scheduled on the loop. The delegate is held strongly until then.
public final class UDPEdge: Edge {
    public var transport: String { UDPTransport.scheme }
    public let localURI: TransportURI
    public let remoteURI: TransportURI
    public let isInbound: Bool
    public private(set) var isClosed = false
    public var delegate: (any EdgeDelegate)?

    let listener: UDPEdgeListener
    /// Where datagrams go and come from, in the socket's own family (IPv4-mapped on a dual-stack socket).
    let remote: SocketAddress
    /// Forward error correction: numbering and parity of what goes to the remote, recovery of what comes
    /// from it, and the group size from its loss reports.
    /// Whether the kernel steers this remote's datagrams to the listener's own socket (`SocketFilter`):
    /// an outbound edge at once, an inbound one from its second packet (a forged source sends one).
    var isSteered = false
    var encoder = FECEncoder()
    var decoder = FECDecoder()
    var policy = FECPolicy()

    init(listener: UDPEdgeListener, remote: SocketAddress, localURI: TransportURI, remoteURI: TransportURI,
         isInbound: Bool) {
        self.listener = listener
        self.remote = remote
        self.localURI = localURI
        self.remoteURI = remoteURI
        self.isInbound = isInbound
        encoder.groupSize = listener.settings.fec.groupSize(chosen: 0)
    }

    /// Sends `packet` as one datagram, or as fragments if it is over 1,443 bytes. Never blocks or throws;
    /// dropped (and counted) if the edge is closed, the packet is over 65,535 bytes or the socket cannot take it
    /// now.
    public func send(_ packet: ByteBuffer) {
        guard !isClosed else { return listener.countDrop(.edgeClosed) }
        listener.send(packet, on: self)
    }

    public func close() {
        guard !isClosed else { return }
        isClosed = true
        listener.remove(self)
        listener.eventLoop.assumeIsolated().execute { [self] in
            let delegate = self.delegate
            self.delegate = nil
            delegate?.edgeDidClose(self)
        }
    }

    func deliver(_ packet: ByteBuffer) {
        guard !isClosed else { return }
        delegate?.edge(self, didReceive: packet)
    }
}

extension UDPEdge: HolePunchingEdge {
    /// Sends two punch packets to the remote with IP TTL (IPv6 hop limit) `ttl`, from the listener's socket
    /// (see `UDPEdgeListener.punch`). Nothing on a closed edge.
    public func punch(ttl: UInt8) {
        guard !isClosed else { return }
        listener.punch(remote, ttl: ttl)
    }
}
