/// Routing: every routed packet, this node's own or one a peer passed on, goes through `route`; what is for this
/// node through `deliver`.
extension Node {
    /// Notes that `reporter` holds connections to `neighbours` (what it shared with us), and the handshake keys
    /// it passed on (`PeerReports.noteHearsay`).
    func noteHeardOf(_ neighbours: [NodeInfo], from reporter: Address) {
        for neighbour in neighbours where neighbour.address != reporter && neighbour.address != address {
            peerReports.noteHearsay(neighbour)
            // Bounded whatever peers report; refilled by the next status messages.
            if heardOf.count >= 4096 { heardOf.removeAll(keepingCapacity: true) }
            heardOf[neighbour.address] = reporter
        }
    }

    /// `heldSince`: the packet is one of ours that waited for a route since then (`HeldPackets`).
    func route(_ packet: RoutedPacket, previous: Address?, heldSince: Timestamp? = nil) {
        let header = packet.header
        if header.payloadType == .data, header.mode == .exact, header.destination == address {
            // Data for this node, the bulk of what arrives: `Router.decide`'s deliver, without the rest.
            logger.trace("route", metadata: ["type": "data", "mode": "exact", "dst": "\(header.destination.short)",
                                             "decision": "deliver"])
            return deliver(packet, previous: previous)
        }
        var packet = packet
        if let previous {
            Connector.stampGateway(&packet, from: previous, link: table.connection(to: previous), gateway: address,
                                   relayURI: tunnelListener?.uri(forwarder: address, target: previous))
        }
        let isTunnel = packet.header.payloadType == .tunnel
        let decision: Router.Decision
        if isTunnel {
            guard let via = TunnelFrame.via(in: packet.payload) else { stats.drop(.truncatedTunnel); return }
            let clearVia: Bool
            (decision, clearVia) = tunnelDecision(packet.header, via: via, previous: previous)
            if clearVia, var tunnel = try? TunnelFrame.decode(packet.payload) {
                tunnel.via = .zero
                packet.payload = tunnel.encoded()
            }
        } else {
            var chosen = Router.decide(packet.header, at: address, table: table, previous: previous,
                                       isRingMember: isRingMember)
            if case .forward(let next) = chosen, pathWatch.isSilent(next),
               let detour = Router.detour(packet.header, avoiding: next, at: address, table: table, previous: previous,
                                          reporter: heardOf[packet.header.destination],
                                          isSilent: { self.pathWatch.isSilent($0) }) {
                stats.routedAroundSilentPaths += 1
                chosen = detour
            }
            decision = chosen
        }
        logger.trace("route", metadata: ["type": "\(packet.header.payloadType)", "mode": "\(packet.header.mode)",
                                         "dst": "\(packet.header.destination.short)", "decision": "\(decision)"])
        switch decision {
        case .deliver:
            deliver(packet, previous: previous)
        case .forward(let next):
            guard packet.header.hops < packet.header.ttl else {
                stats.drop(.ttlExpired)
                return routingFailed(packet.header, .ttlExpired)
            }
            guard let edgeID = (isTunnel ? directTable : table).edgeID(to: next) else { return }
            packet.header.hops += 1
            if isTunnel {
                // The hops between a tunnel's end and its forwarder must outlast trims (`TunnelCarriers`).
                if next == packet.header.destination { tunnelCarriers.carried(by: next, at: scheduler.now) }
                if let previous, previous == packet.header.source { tunnelCarriers.carried(by: previous, at: scheduler.now) }
            }
            if previous != nil {
                stats.routedForwarded += 1
                onForward?(packet)
            }
            send(routed: packet, on: edgeID)
        case .fail(let code):
            if previous == nil, table.isEmpty, joinQueue.count < Node.joinQueueLimit,
               linker.attempts.values.contains(where: { $0.type == .leaf }) {
                // Joining: the leaf link is on its way. Send this right behind its link request on the same
                // edge, so the gateway routes it as soon as it accepts us (saves a round trip per join). More
                // (a device sending before the node joined) waits with the held packets below, bounded too.
                joinQueue.append(packet)
                return
            }
            if code == .absentDestination,
               let reporter = Router.viaReporter(packet.header, previous: previous, isTunnel: isTunnel,
                                                 reporter: heardOf[packet.header.destination]),
               let connection = (isTunnel ? directTable : table).connection(to: reporter) {
                // Through the peer that holds the destination (`Router.viaReporter`), rather than lost. A tunnel
                // frame only over a direct connection (NAT mix, seed 1: a relayed connection's frame was lost at
                // the destination's ring neighbour, whose connection to it was relayed too).
                packet.header.hops += 1
                stats.routedViaReporter += 1
                return send(routed: packet, on: connection.edgeID)
            }
            // Our own data, and we seem nearest only because our place in the ring is still forming: it waits for a
            // connection rather than coming back as "unreachable". Our own Connect-To-Me too while an attempt of
            // ours to its target punches: that attempt waits for the punch only the CTM asks for, and without it
            // sends into the peer's unopened NAT (docs/architecture.md, "Hole punching"). Or passed on by a node
            // that joins through us while we join ourselves (a network starting up all at once): our own leaf link,
            // the way into the ring, is on its way, and the joiner's CTM waits for it rather than failing (its error
            // cannot even reach it). Not tunnel frames: routed again they would count as ours, and their edge has
            // its own failover.
            let ownDataWhileForming = code == .absentDestination && previous == nil && packet.header.mode == .exact
                && ([.data, .secure].contains(packet.header.payloadType)
                    || packet.header.payloadType == .connectToMe && punchesFor(packet.header.destination))
                && (heldSince != nil || held.isForming(joinedAt: joinedRingAt, now: scheduler.now))
            let passedOnWhileJoining = packet.header.source != address && (previous != nil || heldSince != nil)
                && !isTunnel && !isRingMember && Router.gateway(in: table) == nil
                && linker.attempts.values.contains(where: { $0.type == .leaf })
            if ownDataWhileForming || passedOnWhileJoining, held.hold(packet, since: heldSince ?? scheduler.now) {
                if heldSince == nil { stats.heldForRoute += 1 }
                if timers[.heldPackets] == nil, let deadline = held.nextDeadline {
                    arm(.heldPackets, after: max(.zero, deadline - scheduler.now))
                }
                return
            }
            stats.drop(.routing(code, packet.header.payloadType))
            routingFailed(packet.header, code)
        }
    }

    /// Whether an attempt of ours to `peer` punches (and so holds its request for the peer's punch, which our
    /// Connect-To-Me asks for).
    private func punchesFor(_ peer: Address) -> Bool { linker.attempt(to: peer).map { $0.opening != .direct } ?? false }

    /// Routes again the packets that waited for a route (`HeldPackets`): those that now have one go, the others
    /// wait on until their time is up, and then fail as they would have at once.
    func routeHeldPackets() {
        let (retry, expired) = held.takeAll(now: scheduler.now)
        for packet in expired {
            stats.drop(.routing(.absentDestination, packet.header.payloadType))
            routingFailed(packet.header, .absentDestination)
        }
        for (packet, since) in retry {
            // Our Connect-To-Me to a peer we are connected to now is moot: the attempt beside it linked.
            if packet.header.payloadType == .connectToMe, packet.header.source == address,
               table.contains(packet.header.destination) { continue }
            route(packet, previous: nil, heldSince: since)
        }
        timers.removeValue(forKey: .heldPackets)?.cancel()
        if let deadline = held.nextDeadline { arm(.heldPackets, after: max(.zero, deadline - scheduler.now)) }
    }

    private func routingFailed(_ header: RoutedHeader, _ code: RoutingError.Code) {
        guard header.payloadType != .routingError else { return }
        let error = RoutingError(code: code, destination: header.destination, payloadType: header.payloadType, reporter: address)
        if header.source == address { return handleRoutingError(error) }
        let back = RoutedHeader(mode: .exact, payloadType: .routingError, source: address, destination: header.source)
        route(RoutedPacket(header: back, payload: error.encoded()), previous: nil)
    }

    private func handleRoutingError(_ error: RoutingError) {
        if error.payloadType == .tunnel {
            tunnelListener?.tunnelFrameUndeliverable(to: error.destination, reporter: error.reporter, code: error.code)
        }
        if error.payloadType == .echoRequest { echoUndeliverable(error) }
        if error.payloadType == .secure, error.code == .absentDestination { endToEndPeerUnreachable(error.destination) }
        if error.payloadType == .connectToMe {
            run(connector.undeliverable(to: error.destination, code: error.code, servedByAttempts: linker.servedConnects))
        }
        onRoutingError?(error)
    }

    /// A `nearest` Connect-To-Me (a far link's) asks for any node near a point, not this one. When only a relay
    /// could join us and its requester (neither of us is reachable directly, and no punch can work: one of us
    /// maps per peer or punches nothing), the nearest neighbour of ours that is reachable directly (it lists no
    /// relay URIs) takes it: a direct link instead of a relayed one, and no forwarder link for it. In the
    /// simulated NAT mix relayed far links and their forwarder links were a third of each node's connections.
    func delegate(forNearestCTMFrom requester: NodeInfo, near point: Address) -> Address? {
        guard tunnelListener != nil, !publicURIs.isReachableDirectly, requester.address != address,
              !table.contains(requester.address), listsRelayURIs(requester.uris),
              relayPlan(to: requester.address, among: requester.uris).atOnce || punchesNothing(requester.uris)
        else { return nil }
        return table.nearestNeighbours(perSide: config.sharedNeighboursPerSide)
            .filter { $0.address != requester.address && !listsRelayURIs($0.peer.uris) && !$0.peer.uris.isEmpty }
            .min { $0.address.distance(to: point).magnitude < $1.address.distance(to: point).magnitude }?.address
    }

    /// Whether a peer at `uris` punches nothing toward us: it lists none of a datagram transport we run.
    private func punchesNothing(_ uris: [TransportURI]) -> Bool {
        !uris.contains { listener(for: $0.scheme)?.observedURIsAreMappings == true }
    }

    private func deliver(_ packet: RoutedPacket, previous: Address?) {
        stats.routedDelivered += 1
        let header = packet.header
        do {
            switch header.payloadType {
            case .data:
                // Exact-mode data from a node we are not connected to travels end to end sealed (`.secure`);
                // in plaintext, its source is only a claim of the last hop.
                if header.mode == .exact, previous != nil, previous != header.source, endToEnd != nil {
                    return stats.drop(.unauthenticatedData)
                }
                observer?.delivered(hops: header.hops)
                if header.mode == .exact { noteTraffic(with: header.source, bytes: packet.payload.readableBytes, isSent: false) }
                onDeliver?(header, packet.payload)
            case .secure:
                receiveEndToEnd(packet.payload, header: header)
            case .connectToMe:
                let ctm = try ConnectToMe.decode(packet.payload)
                let requester = ctm.requester.address
                if requester == header.source { peerReports.note(ctm.requester) }
                logger.trace("ctm", metadata: ["from": "\(requester.short)", "mode": "\(header.mode)", "type": "\(ctm.type)"])
                if header.mode == .nearest, let delegate = delegate(forNearestCTMFrom: ctm.requester, near: header.destination) {
                    // Any node near the point will do: one a direct path reaches answers instead.
                    logger.debug("a Connect-To-Me only a relay could answer goes on to a neighbour",
                                 metadata: ["from": "\(requester.short)", "to": "\(delegate.short)"])
                    stats.connectsHandedOn += 1
                    var onward = header
                    onward.mode = .exact
                    onward.destination = delegate
                    return route(RoutedPacket(header: onward, payload: packet.payload), previous: previous)
                }
                let facts = Connector.CTMFacts(
                    info: info, neighbours: sharedNeighbours(table.nearestNeighbours(perSide: config.sharedNeighboursPerSide),
                                                             for: requester),
                    isConnected: table.contains(requester), isLinking: linker.attempt(to: requester) != nil,
                    tunnelScheme: tunnelListener?.scheme)
                run(connector.connectToMe(ctm, facts: facts))
            case .connectToMeReply:
                let reply = try ConnectToMeReply.decode(packet.payload)
                if reply.responder.address == header.source { peerReports.note(reply.responder) }
                run(connector.connectToMeReply(reply, header: header,
                                               isConnectedToRequester: table.contains(reply.requester)))
            case .routingError: handleRoutingError(try RoutingError.decode(packet.payload))
            case .echoRequest, .echoReply: try receiveEcho(packet.payload, header: header)
            case .namePut, .nameGet, .nameAnswer: try receiveName(packet.payload, header: header)
            case .tunnel:
                guard let tunnelListener else { return stats.drop(.noTunnelTransport) }
                if let previous { tunnelCarriers.carried(by: previous, at: scheduler.now) }
                let tunnel = try TunnelFrame.decode(packet.payload)
                tunnelListener.receiveTunnelFrame(tunnel.frame, from: header.source, returnVia: tunnel.returnVia)
            default: stats.drop(.unknownPayloadType)
            }
        } catch {
            stats.drop(.malformed(error))
        }
    }
}
