import NIOCore
import WOWKit

/// An edge to one remote node through a forwarder (see `RelayEdgeListener`).
public final class RelayEdge: TunnelledEdge {
    public var transport: String { RelayTransport.scheme }
    public let isInbound: Bool
    public private(set) var isClosed = false
    public var delegate: (any EdgeDelegate)?
    /// The remote node.
    public let peer: Address
    /// The node frames go through first (connected directly to the peer); may change as forwarders fail.
    /// `.zero` once every advertised one failed: frames route toward the peer itself.
    public internal(set) var forwarder: Address
    /// Forwarders that failed since the peer's last frame came (`.zero` for routing toward the peer itself).
    var failedForwarders: Set<Address> = []
    /// Frames the node could not send (no route to the forwarder or the peer).
    public private(set) var framesUnsent = 0

    private weak var listener: RelayEdgeListener?
    private let localAddress: Address

    init(listener: RelayEdgeListener, peer: Address, forwarder: Address, isInbound: Bool) {
        self.listener = listener
        self.peer = peer
        self.forwarder = forwarder
        self.isInbound = isInbound
        self.localAddress = listener.host?.localAddress ?? .zero
    }

    public var localURI: TransportURI { RelayTransport.uri(forwarder: forwarder, target: localAddress) }
    public var remoteURI: TransportURI { RelayTransport.uri(forwarder: forwarder, target: peer) }

    public func send(_ packet: ByteBuffer) {
        guard !isClosed, let listener else { return }
        if !listener.send(packet, from: self) { framesUnsent += 1 }
    }

    public func close() {
        guard !isClosed else { return }
        isClosed = true
        listener?.remove(self)
        let scheduler = listener?.scheduler
        scheduler?.schedule(after: .zero) { [self] in
            let delegate = self.delegate
            self.delegate = nil
            delegate?.edgeDidClose(self)
        }
    }

    func deliver(_ frame: ByteBuffer) {
        guard !isClosed else { return }
        delegate?.edge(self, didReceive: frame)
    }
}
