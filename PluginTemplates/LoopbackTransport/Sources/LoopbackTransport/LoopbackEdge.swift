import NIOCore
import WOWKit

/// An edge of the `loopback` transport: the packets between one listener and one remote port.
///
/// Follows the `Edge` contract (WOWKit's `Sources/WOWKit/Transport/Edge.swift`): used only on the node's
/// executor; `send` never blocks or throws and drops what it cannot send; `close` is idempotent and reports
/// `edgeDidClose` once, later. Datagrams carry no "closed" signal, so the remote end learns of a close the
/// way a UDP peer does: silence, which the node's liveness checks turn into a dead connection.
public final class LoopbackEdge: Edge {
    public var transport: String { LoopbackTransport.scheme }
    public var localURI: TransportURI { listener.localURI }
    public let remoteURI: TransportURI
    public let isInbound: Bool
    public private(set) var isClosed = false
    public var delegate: (any EdgeDelegate)?

    let listener: LoopbackEdgeListener
    let remotePort: UInt16

    init(listener: LoopbackEdgeListener, remotePort: UInt16, remoteURI: TransportURI, isInbound: Bool) {
        self.listener = listener
        self.remotePort = remotePort
        self.remoteURI = remoteURI
        self.isInbound = isInbound
    }

    /// HOOK: how a packet leaves. The edge owns `packet` from here on.
    public func send(_ packet: ByteBuffer) {
        guard !isClosed else { return }
        listener.transmit(packet, to: remotePort)
    }

    public func close() {
        guard !isClosed else { return }
        isClosed = true
        listener.remove(self)
        listener.scheduler.schedule(after: .zero) { [self] in
            let delegate = self.delegate
            self.delegate = nil
            delegate?.edgeDidClose(self)
        }
    }

    /// HOOK: how a packet arrives: whole, one callback per packet.
    func deliver(_ packet: ByteBuffer) {
        guard !isClosed else { return }
        delegate?.edge(self, didReceive: packet)
    }
}
