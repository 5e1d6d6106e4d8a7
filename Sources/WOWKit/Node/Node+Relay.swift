import NIOCore

/// Relayed (tunnelled) connections: the node's side of the relay transport (`OverlayTunnelHost`) and the
/// routing of tunnel frames over direct connections only. What it keeps up for them (forwarders, direct retries)
/// is `RelayUpkeep`'s to decide.
extension Node {
    /// The connections tunnel frames may cross: every one but the tunnelled ones.
    var directTable: ConnectionTable { relay?.directTable(of: table) ?? table }

    /// What to do with a `tunnel` packet here (`TunnelRouter`).
    func tunnelDecision(_ header: RoutedHeader, via: Address, previous: Address?)
        -> (decision: Router.Decision, clearVia: Bool) {
        TunnelRouter.decide(header, via: via, previous: previous, at: address, direct: directTable, isRingMember: isRingMember,
                            relayedVia: relayForwarder(to: header.destination))
    }

    /// The forwarder this node's relayed connection to `peer` goes through (the peer's own first hop), if any.
    private func relayForwarder(to peer: Address) -> Address? {
        guard let tunnelListener, let connection = table.connection(to: peer), connection.transport == tunnelListener.scheme,
              let edge = edges[connection.edgeID]?.edge else { return nil }
        return tunnelListener.forwarder(of: edge.remoteURI)
    }

    /// Keeps the forwarders the node's tunnels need (`RelayUpkeep.forwarders`), one at a time: each added one
    /// tells the overlords, who may change the table before the next is chosen.
    func keepForwarders() {
        for _ in 0...RelayUpkeep.minimumForwarders {
            guard var upkeep = relay else { return }
            // The first hops of our relayed edges, and the forwarders our relay URIs name.
            var inUse = Set(table.connections.compactMap(forwarder(of:)))
            if let tunnelListener { inUse.formUnion(tunnelListener.localURIs.compactMap(tunnelListener.forwarder(of:))) }
            let directives = upkeep.forwarders(in: table, inUse: inUse, random: &random)
            relay = upkeep
            if directives.isEmpty { return }
            run(directives)
        }
    }

    /// A relayed connection's turn to try a direct edge (`RelayUpkeep.retryDirect`).
    func retryDirectEdge(for connection: Connection, at now: Timestamp) {
        // Most connections are direct: nothing to gather for them.
        guard var upkeep = relay, upkeep.isTunnelled(connection) else { return }
        let directives = upkeep.retryDirect(connection, schemes: Set(listeners.map(\.scheme)),
                                            isLinking: linker.attempt(to: connection.address) != nil,
                                            cannotPunch: cannotPunch(to: connection.address, uris: connection.peer.uris),
                                            at: now)
        relay = upkeep
        run(directives)
    }
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
        // Owned by no overlord: the outcome is for the core alone (`RelayUpkeep` trims the type later).
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
        tunnelCarriers.carried(by: firstHop, at: scheduler.now)
        send(routed: packet, on: connection.edgeID)
        return true
    }
}


