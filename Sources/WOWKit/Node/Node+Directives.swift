import Logging
import NIOCore

/// Carrying out what the state machines decide: every `NodeDirective`, against the node's edges, table, linker,
/// connector and timers.
extension Node {
    func run(_ directives: [NodeDirective]) {
        for directive in directives { run(directive) }
    }

    func run(_ directive: NodeDirective) {
        switch directive {
        case .send(let message, let edge):
            send(message, on: edge)
        case .requestLink(let token, let intent, let target, let edge):
            guard let record = edges[edge] else { return }
            let observed = table.connection(on: edge)?.remoteURI ?? record.edge.remoteURI
            send(.linkRequest(LinkRequest(token: token, intent: intent, requester: info, target: target,
                                          observedURI: observed)), on: edge)
        case .replyToLink(let request, let edge):
            guard let record = edges[edge] else { return }
            let nearest = table.nearestNeighbours(perSide: config.sharedNeighboursPerSide)
                .filter { $0.address != request.requester.address }
            let reply = LinkReply(token: request.token, responder: info, observedURI: record.edge.remoteURI,
                                  neighbours: sharedNeighbours(nearest, for: request.requester.address))
            send(.linkReply(reply), on: edge)
        case .notLinked(let edge, let dropped):
            if dropped { stats.drop(.notLinked) }
            guard edges.mayTellNotLinked(edge, at: scheduler.now) else { return }
            send(.close(Close(reason: .notLinked, message: "no connection on this edge; link again")), on: edge)
        case .release(let edge, let peer):
            release(edge, from: peer)
        case .closeEdgeIfUnused(let edge):
            closeEdgeIfUnused(edge)
        case .establish(let establishment):
            establish(establishment)
        case .removeConnection(let peer, let reason):
            removeConnection(peer, reason: reason)
        case .addLocalType(let type, let peer, let token):
            addLocalType(type, to: peer, announcedWith: token)
        case .addRemoteType(let type, let peer):
            table.update(peer) { $0.remoteTypes.insert(type) }
        case .trim(let type, let peer):
            trim(peer, type: type)
        case .relink(let peer, let uris, let through):
            relinkBothWays(peer, uris: uris, through: through)
        case .startAttempt(let start):
            startAttempt(start)
        case .peerPunched(let token, let uris):
            let attempt = linker.attempt(token: token)
            let uris = linkableURIs(uris, type: attempt?.type)
            let relay = relayPlan(to: attempt?.target, among: uris)
            perform(linker.peerPunched(token: token, uris: uris, fallbackURIs: relay.uris, relayAtOnce: relay.atOnce))
        case .peerWillLink(let token, let uris, let gateway):
            let attempt = linker.attempt(token: token)
            let uris = linkableURIs(uris, type: attempt?.type)
            let relay = relayPlan(to: attempt?.target, among: uris, gateway: gateway)
            perform(linker.peerWillLink(token: token, uris: uris, fallbackURIs: relay.uris, relayAtOnce: relay.atOnce))
        case .requestAlso(let token, let edge):
            guard let uri = edges[edge]?.edge.remoteURI else { break }
            perform(linker.requestAlso(token: token, on: edge, uri: uri))
        case .yieldAttempt(let token, let edge):
            let yielded = linker.yield(token: token, to: edge)
            // The peer's request made the connection the attempt was for: it linked now (both ends of a link made
            // at once on one edge yield, and neither would count it). One kept for a reply counts on that reply.
            if let yielded, !linker.awaitsReplyAfterYielding(token) {
                observer?.linkEstablished(after: scheduler.now - yielded.startedAt, transport: edges[edge]?.edge.transport ?? "?")
            }
            timers.removeValue(forKey: .linkAttempt(token: token))?.cancel()
            responder.attemptEndedWithoutConnection(token: token)
            forgetLinkRequests(of: yielded)
            withdrawHeldRequests(of: yielded)
        case .route(let packet):
            route(packet, previous: nil)
        case .sendRouted(let packet, let edge):
            send(routed: packet, on: edge)
        case .routeWhenPunched(let packet, let token):
            if let attempt = linker.attempt(token: token), attempt.edge == nil {
                connector.hold(packet, until: token)
            } else {
                route(packet, previous: nil)
            }
        case .linkBack(let ctm, let reply):
            let requester = ctm.requester.address
            let connection = table.connection(to: requester)
            run(connector.linkBack(ctm, reply: reply, connectionEdge: connection?.edgeID,
                                   requesterHoldsType: connection?.remoteTypes.contains(ctm.type) ?? false,
                                   ours: linker.attempt(to: requester)))
        case .linkToResponder(let reply):
            let responder = reply.responder.address
            run(connector.linkToResponder(reply, isConnected: table.contains(responder),
                                          ours: linker.attempt(to: responder), random: &random))
        case .completeConnect(let token, let peer):
            run(connector.succeed(token, peer: peer))
        case .connectSucceeded(let request, let owner, let peer):
            guard let connection = table.connection(to: peer) else {
                return run(.connectFailed(request, owner: owner, reason: "the connection to \(peer.short) closed"))
            }
            post(.connectSucceeded(request, connection), only: owner)
        case .connectFailed(let request, let owner, let reason):
            stats.connectsFailed += 1
            post(.connectFailed(request, reason: reason), only: owner)
        case .neighboursLearned(let neighbours, let peer):
            noteHeardOf(neighbours, from: peer)
            post(.neighboursLearned(neighbours, from: peer))
        case .armTimer(let timer, let delay):
            arm(timer, after: delay)
        case .cancelTimer(let timer):
            timers.removeValue(forKey: timer)?.cancel()
        case .noteReached(let uri):
            noteReached(at: uri)
        case .logRefusal(let refusal, let edge):
            logRefusal(refusal, on: edge)
        case .drop(let reason):
            stats.drop(reason)
        }
    }

    // MARK: - Connections

    /// Makes or updates the connection (`LinkResponder.establish`) and tells whoever needs to know.
    @discardableResult
    func establish(_ establishment: Establishment) -> Connection? {
        guard let record = edges[establishment.edge] else { return nil }
        let done = LinkResponder.establish(establishment, on: record.edge, in: &table, at: scheduler.now)
        if let old = done.movedFrom {
            let metadata: Logger.Metadata = [
                "peer": "\(establishment.peer.address.short)", "from": "\(edges[old]?.edge.remoteURI.text ?? "\(old)")",
                "to": "\(record.edge.remoteURI.text)", "by_peer": "\(establishment.byPeer)"]
            if pathWatch.isFailingOver(establishment.peer.address) {
                logger.info("connection moved to another path", metadata: metadata)
            } else {
                logger.debug("connection to a new edge", metadata: metadata)
            }
            pathWatch.connectionMoved(establishment.peer.address)
            release(old, from: establishment.peer.address)
        }
        edges[establishment.edge]?.formerPeer = nil
        // A path's first round trip: the secure handshake's on this edge, if this end started it.
        if done.connection.roundTrip == nil, let roundTrip = securedEdge(establishment.edge)?.handshakeRoundTrip {
            table.update(establishment.peer.address) { $0.roundTrip = roundTrip }
        }
        if done.joinedRing {
            joinedRingAt = scheduler.now
            logger.info("joined the ring", metadata: ["via": "\(establishment.peer.address.short)",
                                                      "transport": "\(done.connection.transport)"])
        }
        if done.isNewOrChanged {
            post(.connectionAdded(done.connection))
            tableChanged()
        }
        return done.connection
    }

    /// Adds one of our types to the connection to `peer`; with a token, tells the peer with a link request on
    /// the connection's edge (the peer merges it; the reply is not needed).
    func addLocalType(_ type: ConnectionType, to peer: Address, announcedWith token: UInt64?) {
        guard var connection = table.connection(to: peer), !connection.localTypes.contains(type) else { return }
        connection.localTypes.insert(type)
        table.upsert(connection)
        guard let token else { return post(.connectionAdded(connection)) }
        run(.requestLink(token: token, intent: .connect(type), target: peer, on: connection.edgeID))
        post(.connectionAdded(connection))
        tableChanged()
    }

    func removeConnection(_ peer: Address, reason: String) {
        guard let removed = table.remove(peer) else { return }
        relay?.connectionRemoved(peer)
        tunnelCarriers.connectionRemoved(peer)
        pathWatch.connectionRemoved(peer)
        responder.connectionRemoved(peer)
        logger.debug("connection removed", metadata: ["peer": "\(peer.short)", "reason": "\(reason)"])
        post(.connectionRemoved(removed))
        tableChanged()
    }

    // MARK: - Edges

    /// The connection to `peer` moved from edge `id` to another, or was trimmed there, while the peer may still
    /// send there for a moment: what it sends is taken as its connection's, and the liveness sweep closes the
    /// edge once it has been unused for a while (docs/protocol.md, "Both ends agree on the edge").
    func release(_ id: EdgeID, from peer: Address) {
        guard edges[id] != nil, table.peer(on: id) == nil else { return }
        edges.release(id, from: peer, at: scheduler.now)
    }

    func closeEdgeIfUnused(_ id: EdgeID) {
        guard let record = edges[id], table.peer(on: id) == nil, !linker.isUsing(id) else { return }
        forget(id)
        record.edge.close()
    }

    func forget(_ id: EdgeID) {
        edges.forget(id)?.edge.delegate = nil
    }

    /// Registers a transport's edge; on a secured node the node speaks to it through a `SecuredEdge`.
    func register(_ edge: any Edge) -> EdgeID {
        let (id, new) = edges.register(edge, at: scheduler.now) { edge in
            edgeSecurity.map { SecuredEdge(wrapping: edge, security: $0) } ?? edge
        }
        new?.delegate = self
        return id
    }

    // MARK: - Sending

    /// Sends `message` on an edge, encoded with the room the edge frames it in (a `SecuredEdge` seals it there:
    /// one allocation per message).
    func send(_ message: EdgeMessage, on id: EdgeID) {
        if case .routed(let packet) = message { return send(routed: packet, on: id) }
        guard let target = edges.sendingTarget(id) else { return }
        transmit(message.encoded(headroom: target.edge.framingHeadroom, tailroom: target.edge.framingTailroom),
                 to: target, on: id, awaitsAnswer: false)
    }

    /// Sends a routed packet on an edge, as `send(.routed(packet), on:)` does, without the message enum: every
    /// packet of the data path comes here.
    func send(routed packet: RoutedPacket, on id: EdgeID) {
        guard let target = edges.sendingTarget(id) else { return }
        transmit(packet.encodedMessage(headroom: target.edge.framingHeadroom, tailroom: target.edge.framingTailroom),
                 to: target, on: id, awaitsAnswer: packet.isApplicationTraffic)
    }

    /// Hands bytes to the edge as they are. `awaitsAnswer`: whether the path watch should expect a packet back
    /// (application traffic only).
    func transmit(_ buffer: consuming ByteBuffer, on id: EdgeID, awaitsAnswer: Bool) {
        guard let target = edges.sendingTarget(id) else { return }
        transmit(buffer, to: target, on: id, awaitsAnswer: awaitsAnswer)
    }

    private func transmit(_ buffer: consuming ByteBuffer, to target: EdgeTable.SendingTarget, on id: EdgeID,
                          awaitsAnswer: Bool) {
        stats.count(bytes: buffer.readableBytes, isSent: true)
        // Handed over, not shared: a secured edge seals in the buffer's own bytes only if nothing else holds it.
        target.edge.send(consume buffer)
        if awaitsAnswer, !target.isUnanswered, pathWatch.failoverAfter > .zero { noteUnanswered(id) }
    }
}
