import NIOCore
import WOWKit

/// An edge of the `memory` transport: the packets between one `MemoryEdgeListener` and one remote
/// `memory://<host>:<port>`. Made by the listener (inbound on a packet from a new remote, outbound by
/// `createEdge`).
///
/// Follows the `Edge` contract. `send` hands the buffer to the network as it is (a closed edge drops it,
/// counted as `edge_closed`). `close` removes the edge from its listener, so the remote's next packet makes a
/// new inbound edge, and reports `edgeDidClose` once, scheduled at the same virtual instant; on a stream
/// (`memory-stream`) the other end's edge closes too, one way later (`MemoryNetwork.closeStream`). The delegate is
/// held strongly until then and released after `edgeDidClose`.
public final class MemoryEdge: Edge {
    public var transport: String { listener.scheme }
    public var localURI: TransportURI { listener.localURI }
    public let remoteURI: TransportURI
    public let isInbound: Bool
    public private(set) var isClosed = false
    public var delegate: (any EdgeDelegate)?

    let listener: MemoryEdgeListener
    let remote: MemoryEndpoint

    init(listener: MemoryEdgeListener, remote: MemoryEndpoint, remoteURI: TransportURI, isInbound: Bool) {
        self.listener = listener
        self.remote = remote
        self.remoteURI = remoteURI
        self.isInbound = isInbound
    }

    public func send(_ packet: ByteBuffer) {
        guard !isClosed else { return listener.network.dropSendOnClosedEdge() }
        listener.send(packet, to: remote)
    }

    public func close() {
        guard !isClosed else { return }
        isClosed = true
        listener.remove(self)
        if listener.isStream { listener.network.closeStream(from: listener.local, to: remote) }
        listener.network.scheduler.scheduleUncancellable(after: .zero) { [self] in
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

extension MemoryEdge: HolePunchingEdge {
    /// Opens or refreshes the sending host's NAT mapping and filter entry toward the remote, as a punch
    /// packet with IP TTL `ttl` would; nothing is delivered (see `MemoryNetwork.punch`). Nothing on a closed
    /// edge.
    public func punch(ttl: UInt8) {
        guard !isClosed else { return }
        listener.network.punch(from: listener.local, to: remote, ttl: ttl)
    }
}
