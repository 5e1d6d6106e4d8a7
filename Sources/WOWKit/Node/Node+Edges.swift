import NIOCore

// MARK: - Transport callbacks

extension Node: EdgeListenerDelegate, SecuredEdgeDelegate {
    public func edgeListener(_ listener: any EdgeListener, didAccept edge: any Edge) {
        guard isRunning else { edge.close(); return }
        _ = register(edge)
    }

    /// Without security, everything (as before); secured, only a handshake init with the network's admission
    /// MAC makes an edge (`StrangerAdmission`).
    public func edgeListener(_ listener: any EdgeListener, admit packet: ByteBuffer,
                             from remote: () -> TransportURI) -> EdgeAdmission {
        guard isRunning else { return .drop }
        guard let edgeSecurity else { return .accept }
        let (admission, refusal) = strangers.judge(packet, edgeSecurity.credentials, from: { remote().text },
                                                   at: scheduler.now)
        if let refusal {
            stats.drop(.refused(refusal))
            let (_, isRepeat) = strangerRefusals.note(at: scheduler.now)
            SecuredEdge.log(refusal, from: remote(), repeated: isRepeat, to: logger)
        } else if admission != .accept {
            stats.drop(.notAdmitted)
        }
        return admission
    }

    /// A secured node admits a stranger only for an init with the admission MAC (`StrangerAdmission`).
    public var admitsOnlyAuthenticatedStrangers: Bool { edgeSecurity != nil }

    public func edge(_ edge: any Edge, didReceive packet: ByteBuffer) {
        guard isRunning, let id = edges.id(of: edge) else { return }
        stats.count(bytes: packet.readableBytes, isSent: false)
        // A secured edge opens frames before they get here: a frame reaching the node means it runs without security.
        if SecureFrame.isSecureFrame(packet) { return refuseSecureFrame(packet, on: id) }
        handleEdgeMessage(packet, on: id)
    }

    public func edgeDidClose(_ edge: any Edge) {
        guard let id = edges.id(of: edge) else { return }
        forget(id)
        if let peer = table.peer(on: id) {
            if let left = edges.edge(leftBy: peer), let uri = edges[left]?.edge.remoteURI,
               let connection = table.connection(to: peer) {
                // The edge the connection left a moment ago is open still: the peer may hold its end there and
                // have closed this one as unused (a request of an attempt it no longer stood behind moved us
                // here). Back there, and a relink request there makes the peer's end move there too (or
                // refuses it, and the connection goes), so the two ends agree again whatever the peer held.
                logger.debug("connection's edge closed; back on the edge it left",
                             metadata: ["peer": "\(peer.short)", "to": "\(uri.text)"])
                establish(Establishment(peer: connection.peer, edge: left, byPeer: connection.isInbound))
                startRelink(AttemptStart(token: random.next(), intent: .relink, target: peer, uris: [uri],
                                         purpose: .own(connectToken: nil)))
            } else {
                removeConnection(peer, reason: "edge closed")
            }
        }
        perform(linker.edgeClosed(id))
    }

    /// One edge message, decrypted if the node is secured.
    func handleEdgeMessage(_ packet: ByteBuffer, on id: EdgeID) {
        // In place: the whole record is read below only where a message needs it (not for routed traffic).
        guard let received = edges.noteReceived(on: id) else { return }
        if received.wasUnanswered, !pathWatch.silentPaths.isEmpty, let peer = table.peer(on: id) {
            pathWatch.pathAnswered(peer)
        }
        if let linked = table.peer(on: id), EdgeMessage.isRouted(packet) {
            // A routed packet from the connection's peer, the bulk of what arrives: what the switch below does
            // for it (and `strayTraffic` asks nothing of a linked sender), without the message enum around it.
            let routed: RoutedPacket
            do {
                routed = try EdgeMessage.decodeRouted(packet)
            } catch {
                stats.drop(.malformed(error))
                return
            }
            table.noteHeard(from: linked, at: scheduler.now, onPath: true)
            return route(routed, previous: linked)
        }
        let formerPeer = received.formerPeer
        let message: EdgeMessage
        do {
            message = try EdgeMessage.decode(packet)
        } catch {
            stats.drop(.malformed(error))
            return
        }
        let sender: LinkResponder.Sender
        if let linked = table.peer(on: id) {
            sender = LinkResponder.Sender(linked: linked)
        } else {
            // Only off the connection's edge: the certificate's address is a hash to compute.
            guard let record = edges[id] else { return }
            let secured = record.edge as? SecuredEdge
            sender = LinkResponder.sender(linked: nil, isSecured: secured != nil, authenticated: secured?.authenticatedAddress,
                                          formerPeer: formerPeer, tunnelPeer: (record.transportEdge as? any TunnelledEdge)?.peer,
                                          isConnected: { self.table.contains($0) })
        }
        if let peer = sender.peer { table.noteHeard(from: peer, at: scheduler.now, onPath: sender.linked != nil) }
        run(LinkResponder.strayTraffic(from: sender, on: id, formerPeer: formerPeer, message: message))
        switch message {
        case .linkRequest(let request):
            logger.trace("link request", metadata: ["from": "\(request.requester.address.short)", "type": "\(request.type)"])
            peerReports.note(request.requester)
            run(responder.linkRequest(request, on: id, facts: requestFacts(request, on: id)))
        case .linkReply(let reply):
            if reply.responder.address != address, let refusal = entitlementRefusal(claimed: reply.responder.address, on: id) {
                logRefusal(refusal, on: id)
                return
            }
            let actions = linker.replyReceived(reply, on: id)
            if actions.isEmpty {
                noteHandshakeRoundTrip(on: id, to: reply.responder.address)
                edges[id]?.linkRequestSentAt = nil
                let connection = table.connection(to: reply.responder.address)
                let edgesOpen = isOpen(id) && connection.map { isOpen($0.edgeID) } ?? false
                run(responder.unusedReply(reply, on: id, connection: connection, edgesOpen: edgesOpen, random: &random))
            }
            perform(actions)
        case .linkError(let error):
            if error.code == .selfLink, let attempt = linker.attempt(token: error.token), attempt.edge == id,
               let uri = edges[id]?.edge.remoteURI {
                ownURIs.insert(uri)
                cachedInfo = nil
            }
            perform(linker.errorReceived(error, on: id))
        case .ping(let nonce):
            guard sender.peer != nil else { return dropUnlinked(message, from: sender, on: id) }
            send(.pong(nonce: nonce), on: id)
        case .pong(let nonce):
            guard let peer = sender.peer else { return dropUnlinked(message, from: sender, on: id) }
            let sent = Timestamp(nanoseconds: Int64(bitPattern: nonce))
            // A pong on the edge the connection just left measured that path, not the connection's.
            if sent <= scheduler.now, sender.linked != nil { table.update(peer) { $0.roundTrip = scheduler.now - sent } }
        case .close(let close):
            guard let edgeURI = edges[id]?.edge.remoteURI else { return }
            run(responder.close(close, on: id, sender: sender, formerPeer: formerPeer, edgeURI: edgeURI,
                                isLinking: { self.linker.attempt(to: $0) != nil },
                                connectionEdge: { self.table.connection(to: $0)?.edgeID }, random: &random))
        case .status(let status):
            guard let peer = sender.peer else { return dropUnlinked(message, from: sender, on: id) }
            noteHeardOf(status.neighbours, from: peer)
            post(.neighboursLearned(status.neighbours, from: peer))
        case .routed(let packet):
            if let peer = sender.peer { return route(packet, previous: peer) }
            // A member without a connection here: its application traffic only (ring upkeep such as a
            // Connect-To-Me needs a connection: a member whose link was refused must stay out of the ring).
            guard let member = sender.member, message.isApplicationTraffic else { return dropUnlinked(message, from: sender, on: id) }
            route(packet, previous: member)
        }
    }

    /// Connection traffic from a sender with no connection on edge `id`: dropped, and the sender is told to link
    /// again.
    private func dropUnlinked(_ message: EdgeMessage, from sender: LinkResponder.Sender, on id: EdgeID) {
        logger.debug("dropped: no connection on this edge",
                     metadata: ["kind": "\(message.kind)", "member": "\(sender.member?.short ?? "-")", "edge": "\(id)"])
        run(.notLinked(id, dropped: true))
    }

    /// What the answer to a link request on edge `id` depends on.
    private func requestFacts(_ request: LinkRequest, on id: EdgeID) -> LinkResponder.RequestFacts {
        let peer = request.requester.address
        let existing = table.connection(to: peer)
        return LinkResponder.RequestFacts(
            refusal: peer == address ? nil : entitlementRefusal(claimed: peer, on: id), existing: existing,
            ours: linker.attempt(to: peer), ourConnectType: connector.ourType(token: request.token),
            isConnectPending: connector.pending[request.token] != nil,
            tableLimit: table.count >= config.maximumConnections ? config.maximumConnections : nil,
            isTunnelledEdge: edges[id]?.transportEdge is any TunnelledEdge)
    }

    private func isOpen(_ id: EdgeID) -> Bool { edges[id].map { !$0.edge.isClosed } ?? false }
}
