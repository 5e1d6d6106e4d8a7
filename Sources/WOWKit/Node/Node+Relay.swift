import NIOCore

/// Relayed (tunnelled) connections: the node's side of the relay transport (`OverlayTunnelHost`), the routing
/// of tunnel frames over direct connections only, the forwarders those need, and retrying direct edges.
extension Node {
    func isTunnelled(_ connection: Connection) -> Bool {
        tunnelListener?.scheme == connection.transport
    }

    /// The connections tunnel frames may cross: every one but the tunnelled ones.
    var directTable: ConnectionTable {
        guard let tunnelScheme = tunnelListener?.scheme else { return table }
        if let cached = directTableCache, cached.revision == table.revision { return cached.table }
        var direct = ConnectionTable(localAddress: address)
        for connection in table.connections where connection.transport != tunnelScheme { direct.upsert(connection) }
        directTableCache = (table.revision, direct)
        return direct
    }

    /// A relayed connection keeps trying the peer's direct URIs now and then, and moves to a direct edge as
    /// soon as one answers (a `relink` request: the connection and its types stay, the edge changes).
    func tryDirectEdge(for connection: Connection, now: Timestamp) {
        let peer = connection.address
        // The first retry comes soon: a relay often wins a race that a direct edge would have won a bit later.
        // Then the interval doubles with every failed try, up to 8 times `direct_retry_s`.
        let interval = config.linking.directRetryInterval
        let tries = relinkTries[peer]
        let wait = tries.map { interval * (1 << min($0.count - 1, 3)) } ?? min(.seconds(5), interval)
        guard now - (tries?.at ?? connection.createdAt) >= wait, linker.attempt(to: peer) == nil else { return }
        relinkTries[peer] = (now, (tries?.count ?? 0) + 1)
        let schemes = Set(listeners.map(\.scheme)).subtracting([connection.transport])
        let uris = connection.peer.uris.filter { schemes.contains($0.scheme) }
        guard !uris.isEmpty else { return }
        // The CTM is routed over the relay itself.
        relinkBothWays(peer, uris: uris)
    }

    /// What to do with a `tunnel` packet here (`TunnelRouter`).
    func tunnelDecision(_ header: RoutedHeader, via: Address, previous: Address?)
        -> (decision: Router.Decision, clearVia: Bool) {
        TunnelRouter.decide(header, via: via, previous: previous, at: address, direct: directTable, isRingMember: isRingMember)
    }

    /// While the node has relayed connections it keeps `minimumForwarders` direct ones (type `forwarder`, which
    /// overlords do not trim and the peer sees it wants), or every tunnel would lose its first hop when the
    /// overlords trim direct connections they no longer need. Without relayed connections it lets them go.
    func keepForwarders() {
        guard tunnelListener != nil else { return }
        let direct = directTable.connections
        let kept = direct.filter { $0.localTypes.contains(.forwarder) }
        if direct.count == table.count {
            for connection in kept { trim(connection.address, type: .forwarder) }
            return
        }
        guard kept.count < Node.minimumForwarders else { return }
        // Structured ones first (they stay longer), nearest first.
        let candidates = directTable.nearestNeighbours(perSide: Node.minimumForwarders).map(\.address)
            + direct.filter { !$0.localTypes.contains(.forwarder) }.map(\.address)
        var added = kept.count
        var seen = Set(kept.map(\.address))
        for peer in candidates where added < Node.minimumForwarders && seen.insert(peer).inserted {
            guard table.contains(peer) else { continue }
            addLocalType(.forwarder, to: peer, announcedWith: random.next())
            added += 1
        }
    }

    /// How many direct connections a node with relayed ones keeps for them.
    public static let minimumForwarders = 2
}

// MARK: - Tunnel host (the relay transport's hook)

extension Node: OverlayTunnelHost {
    public var localAddress: Address { address }

    public var directPeers: [Address] {
        let direct = directTable
        let nearest = direct.nearestNeighbours(perSide: config.sharedNeighboursPerSide).map(\.address)
        let others = direct.connections.filter { $0.isStructured && !nearest.contains($0.address) }.map(\.address)
        let leaves = direct.connections.filter { !$0.isStructured }.map(\.address)
        return nearest + others + leaves
    }

    public func isDirectPeer(_ peer: Address) -> Bool { directTable.contains(peer) }

    public func connectForwarder(_ forwarder: Address) {
        guard isRunning, forwarder != address, !table.contains(forwarder), linker.attempt(to: forwarder) == nil,
              !connector.isConnecting(to: forwarder) else { return }
        // Owned by no overlord: the outcome is for the core alone (`keepForwarders` trims the type later).
        connect(ConnectRequest(target: forwarder, mode: .exact, type: .forwarder), owner: .core)
    }

    public func advertisedURIs(of peer: Address) -> [TransportURI] {
        table.connection(to: peer)?.peer.uris ?? linker.attempt(to: peer)?.uris ?? []
    }

    public func sendTunnelFrame(_ frame: ByteBuffer, to destination: Address, via: Address?) -> Bool {
        guard isRunning, destination != address else { return false }
        let limit = WireFormat.maximumPacketSize - EdgeMessage.routedOverhead - TunnelFrame.overhead
        guard frame.readableBytes <= limit else {
            stats.drop(.tunnelFrameTooLarge)
            return false
        }
        let header = RoutedHeader(mode: .exact, payloadType: .tunnel, source: address, destination: destination)
        let (decision, clearVia) = tunnelDecision(header, via: via ?? .zero, previous: nil)
        guard case .forward(let firstHop) = decision, let connection = directTable.connection(to: firstHop) else {
            stats.drop(.tunnelNoRoute)
            return false
        }
        // The first hop is a direct peer of ours: the far end sends back through it.
        let payload = TunnelFrame(via: clearVia ? .zero : via ?? .zero, returnVia: firstHop, frame: frame).encoded()
        var packet = RoutedPacket(header: header, payload: payload)
        packet.header.hops = 1
        send(.routed(packet), on: connection.edgeID)
        return true
    }
}


