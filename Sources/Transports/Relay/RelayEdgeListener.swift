import Logging
import NIOCore
import WOWKit

/// The `relay` transport's listener: one edge per remote node, its frames carried as `tunnel` routed
/// packets by the node (`OverlayTunnelHost`).
///
/// An outbound edge sends through the forwarder its URI names; an inbound one through the forwarder the
/// peer names in its latest frame (a node connected directly to the peer), unless the edge's forwarder is
/// connected directly to both ends and that one is not to this node. When a frame comes back
/// undeliverable, the edge moves to another forwarder the peer advertised, then to none (frames route toward the
/// peer itself over direct connections); when that fails too before the peer's next frame, it closes
/// (the node then drops the connection and its overlords repair). Frames are handed to the edge's delegate
/// on a later turn of the scheduler, never from inside the node's own call.
public final class RelayEdgeListener: OverlayTunnelListener {
    public var scheme: String { RelayTransport.scheme }

    let settings: RelayTransport.Settings
    let scheduler: any Scheduler
    private(set) var logger: Logger
    weak var host: (any OverlayTunnelHost)?
    private var delegate: (any EdgeListenerDelegate)?
    private var isRunning = false
    private var isStopped = false
    private var edges: [Address: RelayEdge] = [:]
    /// Frames dropped because `max_edges` edges exist (observable in tests and status).
    public private(set) var framesRefused = 0

    init(settings: RelayTransport.Settings, scheduler: any Scheduler, logger: Logger) {
        self.settings = settings
        self.scheduler = scheduler
        self.logger = logger
    }

    public func attach(host: any OverlayTunnelHost) {
        self.host = host
        // Its lines name the node, as the node's own do (a simulator runs thousands in one log).
        logger[metadataKey: "node"] = "\(host.localAddress.short)"
    }

    /// `relay://<forwarder>/<this node>` for this node's nearest direct peers: where others can reach it when
    /// nothing direct works. None once a peer saw the node at an address it is bound to, with no NAT in
    /// between (`advertise: auto`): then peers can link to it directly, or it to them through their relays
    /// (both ends of a Connect-To-Me link), and relay URIs, long as they are, would only weigh on every
    /// message that carries the node's info. (A host with a public address behind a stateful firewall
    /// that drops what it did not ask for looks public too: set `advertise: always` there.)
    public var localURIs: [TransportURI] {
        guard let host else { return [] }
        switch settings.advertise {
        case .never: return []
        case .auto where host.isReachableDirectly: return []
        case .auto, .always: break
        }
        let forwarders = Array(host.directPeers.prefix(settings.forwarders))
        if forwarders != advertised.forwarders {
            advertised = (forwarders, forwarders.map { RelayTransport.uri(forwarder: $0, target: host.localAddress) })
        }
        return advertised.uris
    }
    /// The last forwarders advertised and their URIs (formatting them is not free; they rarely change).
    private var advertised: (forwarders: [Address], uris: [TransportURI]) = ([], [])

    /// The relayed edges open now.
    public var edgeCount: Int { edges.count }

    public func start(delegate: any EdgeListenerDelegate) throws {
        guard !isStopped else { throw EdgeError.stopped }
        guard host != nil else { throw RelayTransportError.notAttached }
        self.delegate = delegate
        isRunning = true
    }

    public func createEdge(to uri: TransportURI, completion: @escaping (Result<any Edge, EdgeError>) -> Void) {
        let parsed = RelayTransport.parse(uri)
        scheduler.schedule(after: .zero) { [weak self] in
            guard let self, self.isRunning, let host = self.host else { return completion(.failure(.stopped)) }
            switch parsed {
            case .failure(let error):
                completion(.failure(error))
            case .success(let (forwarder, target)):
                if target == host.localAddress || forwarder == host.localAddress {
                    return completion(.failure(.unreachable(uri, reason: "a relay edge to or through this node itself")))
                }
                // Of the forwarders the target advertised, one this node is connected to directly makes a two-hop
                // path; the URI's own comes first when it is one.
                let candidates = self.forwarders(of: target, host: host, preferring: forwarder)
                let forwarder = candidates.first ?? forwarder
                // None is a direct peer: link to one, so that the tunnel becomes two hops (until then frames
                // find their way over the ring).
                if !host.isDirectPeer(forwarder) { host.connectForwarder(forwarder) }
                if let existing = self.edges[target] {
                    // One edge per peer: an attempt to a peer whose frames already come in takes that edge.
                    self.logger.trace("relay edge reused", metadata: [
                        "peer": "\(target.short)", "via": "\(forwarder.short)", "was_via": "\(existing.forwarder.short)"])
                    existing.forwarder = forwarder
                    return completion(.success(existing))
                }
                guard self.edges.count < self.settings.maxEdges else {
                    return completion(.failure(.unreachable(uri, reason: "already \(self.settings.maxEdges) relayed edges (max_edges)")))
                }
                let edge = RelayEdge(listener: self, peer: target, forwarder: forwarder, isInbound: false)
                self.edges[target] = edge
                self.logger.trace("relay edge opened", metadata: ["peer": "\(target.short)", "via": "\(forwarder.short)"])
                completion(.success(edge))
            }
        }
    }

    public func forwarder(of uri: TransportURI) -> Address? {
        guard case .success(let parsed) = RelayTransport.parse(uri) else { return nil }
        return parsed.forwarder
    }

    public func uri(forwarder: Address, target: Address) -> TransportURI {
        RelayTransport.uri(forwarder: forwarder, target: target)
    }

    public func receiveTunnelFrame(_ frame: ByteBuffer, from source: Address, returnVia: Address) {
        guard isRunning else { return }
        if let edge = edges[source] {
            if edge.forwarder != returnVia {
                // The return hop is connected to the peer, but when it is not connected to us a frame through it
                // must first find it over the ring. A forwarder connected to both ends is kept over it (else the
                // two ends, each following the other's first hop, kept moving their edges and, where the ring
                // near one end is relayed, lost frames on the way: NAT mix joins of 4-7 s).
                if let host, !host.isDirectPeer(returnVia), joinsDirectly(edge.forwarder, to: source, host: host) {
                    edge.failedForwarders.removeAll()
                    return deliverLater(frame, to: edge)
                }
                logger.trace("relay edge now via the peer's return hop", metadata: [
                    "peer": "\(source.short)", "via": "\(returnVia.short)", "was_via": "\(edge.forwarder.short)"])
            }
            edge.forwarder = returnVia
            // The peer's frames come: whatever failed toward it may work again.
            edge.failedForwarders.removeAll()
            return deliverLater(frame, to: edge)
        }
        guard edges.count < settings.maxEdges else {
            framesRefused += 1
            return
        }
        let edge = RelayEdge(listener: self, peer: source, forwarder: returnVia, isInbound: true)
        edges[source] = edge
        logger.trace("relay edge accepted", metadata: ["peer": "\(source.short)", "via": "\(returnVia.short)"])
        delegate?.edgeListener(self, didAccept: edge)
        deliverLater(frame, to: edge)
    }

    private func deliverLater(_ frame: ByteBuffer, to edge: RelayEdge) {
        scheduler.schedule(after: .zero) { edge.deliver(frame) }
    }

    public func tunnelFrameUndeliverable(to destination: Address, reporter: Address, code: RoutingError.Code) {
        guard let edge = edges[destination], let host else { return }
        // Another forwarder the peer advertised that has not failed since its last frame came; then none (`.zero`):
        // the frames route toward the peer itself, whose nearest nodes hold it directly (its advertised ones may be
        // stale, while one end's close, trying only those, would leave the other end on a one-way dead connection).
        let failed = edge.forwarder
        edge.failedForwarders.insert(failed)
        let next = forwarders(of: destination, host: host, preferring: nil).first { !edge.failedForwarders.contains($0) }
            ?? (edge.failedForwarders.contains(.zero) ? nil : .zero)
        if let next {
            logger.debug("relay forwarder failed; trying another", metadata: [
                "peer": "\(destination.short)", "failed": "\(failed.short)", "next": "\(next.short)", "code": "\(code)", "reporter": "\(reporter.short)"])
            edge.forwarder = next
        } else {
            logger.debug("relay edge has no forwarder left; closing", metadata: ["peer": "\(destination.short)"])
            edge.close()
        }
    }

    /// Whether frames through `forwarder` cross two direct connections: it is ours and one `peer` advertises.
    private func joinsDirectly(_ forwarder: Address, to peer: Address, host: any OverlayTunnelHost) -> Bool {
        forwarder != .zero && host.isDirectPeer(forwarder)
            && forwarders(of: peer, host: host, preferring: nil).contains(forwarder)
    }

    /// The forwarders `target` advertises (its relay URIs), `preferred` first if given: those that are this
    /// node's direct peers first, then the others.
    private func forwarders(of target: Address, host: any OverlayTunnelHost, preferring preferred: Address?) -> [Address] {
        var all = preferred.map { [$0] } ?? []
        for uri in host.advertisedURIs(of: target) {
            guard case .success(let (forwarder, to)) = RelayTransport.parse(uri), to == target,
                  forwarder != host.localAddress, !all.contains(forwarder) else { continue }
            all.append(forwarder)
        }
        return all.filter(host.isDirectPeer) + all.filter { !host.isDirectPeer($0) }
    }

    public func stop() {
        guard !isStopped else { return }
        isStopped = true
        isRunning = false
        delegate = nil
        let open = edges.values.sorted { $0.peer < $1.peer }
        edges.removeAll()
        for edge in open { edge.close() }
    }

    func send(_ frame: ByteBuffer, from edge: RelayEdge) -> Bool {
        guard let host else { return false }
        return host.sendTunnelFrame(frame, to: edge.peer, via: edge.forwarder)
    }

    func remove(_ edge: RelayEdge) {
        if edges[edge.peer] === edge { edges[edge.peer] = nil }
    }
}
