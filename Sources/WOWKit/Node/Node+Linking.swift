/// Running the `Linker`: opening edges, sending requests and punches, its timers, and what its attempts end in.
extension Node {
    func startAttempt(_ start: AttemptStart) {
        stats.linkAttempts += 1
        // A peer's URIs that once led back to this node (its loopback, say) would again.
        let uris = linkableURIs(start.target == nil ? start.uris : start.uris.filter { !ownURIs.contains($0) },
                                type: start.intent.wire)
        let relay = relayPlan(to: start.target, among: uris, gateway: start.gateway)
        perform(linker.start(token: start.token, type: start.intent.wire, target: start.target, uris: uris,
                             purpose: start.purpose, peerHasPunched: start.peerHasPunched, at: scheduler.now,
                             fallbackURIs: relay.uris, relayAtOnce: relay.atOnce))
    }

    /// The URIs an attempt of `type` may use, in the order to try them (`PublicURIs.inTryingOrder`: a peer
    /// behind our own NAT at its LAN address first): a `forwarder` carries tunnel frames, which never cross a
    /// tunnelled connection, so it links over direct URIs only (a relayed one would be a connection no tunnel
    /// could use, kept for nothing).
    func linkableURIs(_ uris: [TransportURI], type: ConnectionType?) -> [TransportURI] {
        let ordered = publicURIs.inTryingOrder(uris)
        guard type == .forwarder, let tunnel = tunnelListener?.scheme else { return ordered }
        return ordered.filter { $0.scheme != tunnel }
    }

    /// How an attempt to `target` at `uris` uses its relay URIs: which may start beside the direct tries
    /// (`fallbackURIs`), and whether at once (`cannotPunch`, or we punch nothing and the peer is behind a NAT)
    /// or after `relay_after_ms`.
    func relayPlan(to target: Address?, among uris: [TransportURI], gateway: Address? = nil)
        -> (uris: [TransportURI], atOnce: Bool) {
        let atOnce = target.map { cannotPunch(to: $0, uris: uris) || (punchesNothing && listsRelayURIs(uris)) } ?? false
        return (fallbackURIs(among: uris, gateway: gateway, all: atOnce), atOnce)
    }

    /// Whether no datagram of ours gets past our own site: we run no datagram transport, or peers beyond our NAT
    /// saw us only over stream connections (a firewall that lets out TCP, or only TLS on 443, and no UDP). Such
    /// a node punches nothing, so a peer behind a NAT is a relay away unless it sits on our LAN: its attempts
    /// relay at once (the testbed's TCP-only and 443-only joiners were routable only after `relay_after_ms`
    /// whenever a ring neighbour was behind a NAT). The direct tries still run beside the relay, and relayed
    /// connections still retry them (`RelayUpkeep`), which finds a LAN peer.
    var punchesNothing: Bool {
        publicURIs.onlyStreamsGetOut || !listeners.contains { $0.observedURIsAreMappings }
    }

    /// Whether `uris` name a relay: the peer is not reachable directly (behind a NAT or firewall).
    func listsRelayURIs(_ uris: [TransportURI]) -> Bool {
        guard let tunnel = tunnelListener?.scheme else { return false }
        return uris.contains { $0.scheme == tunnel }
    }

    /// Whether no direct path can join us and `peer` (at `uris`): one of us is behind a NAT that maps per peer
    /// (so the other's punch goes to a port that is not ours to it) and the other behind a NAT that filters
    /// (it lists relay URIs, or we are not reachable directly). Such a pair relays at once instead of punching
    /// `relay_after_ms` in vain first (docs/architecture.md, "Hole punching").
    func cannotPunch(to peer: Address, uris: [TransportURI]) -> Bool {
        guard tunnelListener != nil else { return false }
        if publicURIs.mapsPerPeer { return listsRelayURIs(uris) }
        return peerReports.mapsPerPeer(peer) && !publicURIs.isReachableDirectly
    }

    /// The relay URIs among `uris` that may start beside direct tries (`Linker.relayAfter`): those through a
    /// forwarder this node is connected to directly, so starting them early costs no new connection; and the
    /// one through a joining target's `gateway`, the only way to a joiner no direct path reaches before it
    /// has links of its own. `all`: for a pair no direct path can join, the first relay URI the peer names when
    /// none of those goes through a forwarder of ours (it would wait for every direct try to time out otherwise;
    /// every one of them made the simulated NAT mix link to every forwarder named, 65 connections per node).
    private func fallbackURIs(among uris: [TransportURI], gateway: Address?, all: Bool) -> [TransportURI] {
        guard let tunnel = tunnelListener else { return [] }
        let cheap = uris.filter { tunnel.forwarder(of: $0).map { $0 == gateway || isDirectPeer($0) } ?? false }
        guard all, cheap.isEmpty else { return cheap }
        return Array(uris.filter { tunnel.forwarder(of: $0) != nil }.prefix(1))
    }

    /// The TTL of this node's punches: `linking.punch_ttl` passes the node's own NAT and dies at the next
    /// router. A node with no NAT in front of it (peers reach it where it is bound) has none to pass, so its
    /// punch goes one hop less (it still opens a firewall on the host itself): with the full TTL it reached the
    /// peer's NAT when one router stood between the two (the testbed), whose conntrack then gave the peer's own
    /// packets to us another port than the one every other peer had been told of, and no punch toward that
    /// peer could work.
    func punchTTL(_ configured: UInt8) -> UInt8 {
        publicURIs.isReachableDirectly && configured > 1 ? configured - 1 : configured
    }

    func perform(_ actions: [Linker.Action]) {
        for action in actions {
            switch action {
            case .openEdge(let token, let uri):
                openEdge(to: uri) { node, result in
                    let canPunch = (try? result.get()).map { node.edges[$0]?.transportEdge is any HolePunchingEdge } ?? false
                    node.perform(node.linker.edgeOpened(token: token, result: result, canPunch: canPunch, uri: uri))
                    for reply in node.connector.releaseReplies(for: token) { node.route(reply, previous: nil) }
                }
            case .punch(let token, let edge, let ttl):
                guard let record = edges[edge], let punching = record.transportEdge as? any HolePunchingEdge else { continue }
                let ttl = punchTTL(ttl)
                logger.debug("punch", metadata: ["to": "\(record.edge.remoteURI)", "ttl": "\(ttl)",
                                                 "target": "\(linker.attempt(token: token)?.target?.short ?? "?")"])
                punching.punch(ttl: ttl)
            case .sendRequest(let token, let edge, let uri):
                guard let attempt = linker.attempt(token: token) else { continue }
                // The target's static key (from its NodeInfo) lets the request ride in the handshake's init. Not on
                // relayed edges: there it cost the NAT mix its consistency (3 nodes short, 990/1000 delivered at
                // 1,000 nodes, seed 1), the relay's shared per-peer edge and its crossing handshakes not traced yet.
                if let secured = securedEdge(edge), !(secured.inner is any TunnelledEdge) {
                    secured.expectPeer(staticKey: attempt.target.flatMap { peerReports.handshakeKey(of: $0) } ?? config.bootstrapHandshakeKeys[uri])
                }
                let request = LinkRequest(token: token, type: attempt.type, requester: info, target: attempt.target,
                                          observedURI: uri)
                // Held for a secure handshake, its reply would time the handshake too.
                if securedEdge(edge)?.isEstablished ?? true { edges.noteLinkRequestSent(on: edge, at: scheduler.now) }
                // A joiner's Connect-To-Me follows its leaf request, in the same init if it needs one.
                let sendAll = {
                    self.send(.linkRequest(request), on: edge)
                    guard attempt.type == .leaf else { return }
                    for var packet in self.joinQueue {
                        packet.header.hops += 1
                        self.send(routed: packet, on: edge)
                    }
                }
                if let secured = securedEdge(edge) { secured.sendTogether(sendAll) } else { sendAll() }
            case .armTimer(let token, var delay):
                // A request on a secure edge whose handshake is still running leaves only after it: the wait
                // for the reply starts a handshake later (a slow handshake must not fail the link, or the peer,
                // which does get the request, holds a connection we gave up on).
                if let edge = linker.attempt(token: token)?.edge, let secured = securedEdge(edge), !secured.isEstablished {
                    delay = delay * 2
                }
                arm(.linkAttempt(token: token), after: delay)
            case .armFallbackTimer(let token, let delay):
                arm(.linkFallback(token: token), after: delay)
                logger.debug("relay fallback armed", metadata: ["target": "\(linker.attempt(token: token)?.target?.short ?? "?")"])
            case .established(let attempt, let reply, let edge):
                timers.removeValue(forKey: .linkAttempt(token: attempt.token))?.cancel()
                timers.removeValue(forKey: .linkFallback(token: attempt.token))?.cancel()
                observer?.linkEstablished(after: scheduler.now - attempt.startedAt,
                                          transport: edges[edge]?.edge.transport ?? "?")
                linkEstablished(attempt, reply: reply, edge: edge)
                noteHandshakeRoundTrip(on: edge, to: reply.responder.address)
                forgetLinkRequests(of: attempt)
                withdrawHeldRequests(of: attempt)
            case .failed(let attempt, let reason):
                timers.removeValue(forKey: .linkAttempt(token: attempt.token))?.cancel()
                timers.removeValue(forKey: .linkFallback(token: attempt.token))?.cancel()
                attemptFailed(attempt, reason: reason)
                forgetLinkRequests(of: attempt)
                withdrawHeldRequests(of: attempt)
            }
        }
    }

    /// A link handshake completed on `edge`: its round trip is the path's, unless a ping measured it already.
    /// Also for the reply to a request whose attempt yielded to the peer's own on the same edge (each end took
    /// the other's request there, `LinkResponder.oursWins`).
    func noteHandshakeRoundTrip(on edge: EdgeID, to peer: Address) {
        guard let record = edges[edge], let sent = record.linkRequestSentAt, !record.linkRequestResent else { return }
        table.update(peer) { connection in
            if connection.edgeID == edge, connection.roundTrip == nil { connection.roundTrip = scheduler.now - sent }
        }
    }

    /// An attempt ended (completed, failed, or yielded): its requests' send times measure nothing more.
    func forgetLinkRequests(of attempt: Linker.Attempt?) {
        for edge in attempt?.edgesTried ?? [] {
            edges[edge]?.linkRequestSentAt = nil
            edges[edge]?.linkRequestResent = false
        }
    }

    /// An attempt that ended (completed on another edge, failed, or yielded to the peer's own request) may
    /// have left a link request waiting in an edge's secure channel for its handshake. Sent later, it would
    /// reach a peer that holds the connection on another edge already, and the peer would move the connection
    /// to this edge while we stay on ours. Such an edge carries nothing else: closing it withdraws the request.
    /// Not once the edge's init carried the request (first messages): it is out, and the peer may take it and
    /// move its end here later (a slow init); the edge stays, so that its reply (`Linker.replyReceived` for a
    /// yielded attempt, `LinkResponder.unusedReply` otherwise) brings the two ends together again.
    func withdrawHeldRequests(of attempt: Linker.Attempt?) {
        guard let attempt else { return }
        for edge in attempt.edgesTried.sorted() {
            guard let secured = securedEdge(edge), secured.queuedCount > 0, !secured.initCarriesFirstMessages else { continue }
            guard edges[edge] != nil, table.peer(on: edge) == nil, !linker.isUsing(edge) else { continue }
            logger.debug("withdrawing a link request held for a handshake",
                         metadata: ["edge": "\(edge)", "target": "\(attempt.target?.short ?? "?")"])
            closeEdgeIfUnused(edge)
            linker.withdraw(edge, fromYielded: attempt.token)
        }
    }

    private func openEdge(to uri: TransportURI, then: @escaping (Node, Result<EdgeID, EdgeError>) -> Void) {
        // An inbound edge's remote URI is where the peer's socket is, which need not accept anything new (a tcp
        // client's port): an attempt to it (a relink after `notLinked`) goes over that very edge.
        if let id = edges.inboundEdge(to: uri) {
            scheduler.schedule(after: .zero) { [weak self] in
                guard let self, self.isRunning else { return }
                then(self, self.edges[id] != nil ? .success(id) : .failure(.unreachable(uri, reason: "the edge closed")))
            }
            return
        }
        guard let listener = listeners.first(where: { $0.scheme == uri.scheme }) else {
            // Report asynchronously, like a transport would.
            scheduler.schedule(after: .zero) { [weak self] in
                guard let self, self.isRunning else { return }
                then(self, .failure(.unreachable(uri, reason: "this node runs no '\(uri.scheme)' transport")))
            }
            return
        }
        listener.createEdge(to: uri) { [weak self] result in
            guard let self, self.isRunning else { return }
            switch result {
            case .success(let edge): then(self, .success(self.register(edge)))
            case .failure(let error): then(self, .failure(error))
            }
        }
    }

    private func linkEstablished(_ attempt: Linker.Attempt, reply: LinkReply, edge: EdgeID) {
        if attempt.type == .leaf { joinQueue.removeAll() }
        guard let record = edges[edge] else { return responder.attemptEndedWithoutConnection(token: attempt.token) }
        uriLinkOwners[attempt.token] = nil
        if reply.responder.address == address {
            responder.attemptEndedWithoutConnection(token: attempt.token)
            ownURIs.insert(record.edge.remoteURI)
            cachedInfo = nil
            closeEdgeIfUnused(edge)
            return
        }
        // What a peer sees at the end of a tunnel is not where the world can reach us.
        if record.edge.transport != tunnelListener?.scheme { learnObserved(reply.observedURI, from: reply.responder.address) }
        run(responder.attemptCompleted(attempt, reply: reply, on: edge, isConnected: table.contains(reply.responder.address)))
        if attempt.type == .leaf { askSecondView(among: reply.neighbours, besides: reply.responder.address) }
    }

    /// A node behind a NAT that only its leaf has seen links a second leaf to a public node the first one named,
    /// so that a second peer reports its mapping: a NAT that maps per peer shows before the ring links start,
    /// and those relay at once instead of punching in vain (`cannotPunch`). The leaf overlord lets go of both
    /// leaves once the ring holds us.
    private func askSecondView(among neighbours: [NodeInfo], besides leafPeer: Address) {
        guard !askedSecondView, let mapping = publicURIs.singleViewMapping, let tunnel = tunnelListener?.scheme else { return }
        for neighbour in neighbours where neighbour.address != leafPeer && neighbour.address != address
            && !table.contains(neighbour.address) && !neighbour.uris.contains(where: { $0.scheme == tunnel }) {
            // Only the same transport's view tells how its mapping goes.
            let uris = neighbour.uris.filter { $0.scheme == mapping.scheme }
            guard !uris.isEmpty else { continue }
            askedSecondView = true
            logger.debug("asking a second node for its view of our NAT mapping", metadata: ["peer": "\(neighbour.address.short)"])
            startAttempt(AttemptStart(token: random.next(), type: .leaf, target: neighbour.address, uris: uris,
                                      purpose: .own(connectToken: nil)))
            return
        }
    }

    private func attemptFailed(_ attempt: Linker.Attempt, reason: String) {
        stats.linkFailures += 1
        run(responder.attemptFailed(attempt, connectionEdge: attempt.target.flatMap { table.connection(to: $0)?.edgeID }))
        closeHalfOpenLinks(of: attempt)
        if attempt.type == .leaf, !linker.attempts.values.contains(where: { $0.type == .leaf }) { joinQueue.removeAll() }
        logger.debug("link failed", metadata: ["target": "\(attempt.target?.short ?? "?")", "reason": "\(reason)"])
        if let (owner, uris) = uriLinkOwners.removeValue(forKey: attempt.token) {
            // Operators need to see this one: without a bootstrap the node cannot join.
            logger.warning("cannot link to any of these URIs", metadata: [
                "uris": "\(uris.map(\.text).joined(separator: ", "))", "reason": "\(reason)"])
            post(.linkFailed(uris, reason: reason), only: owner)
        }
        if case .own(let token?) = attempt.purpose, let target = attempt.target, !table.contains(target) {
            run(connector.fail(token, reason: "link to \(target.short) failed: \(reason)"))
        }
    }

    /// An attempt that got no reply may still have been accepted: the peer holds a connection on the edge our
    /// request came over and routes over it, while its replies die on the way back (a relay path that works one
    /// way only, a NAT that drops them). Traffic the peer sends on it is lost until its liveness gives up, 30 s
    /// later. So an edge we sent requests on and hold no connection on is told, once, that nothing is linked here
    /// (a `close`, which removes the connection where the peer holds one on that edge and is ignored elsewhere).
    /// Only when we hold no connection to the peer, and only over a channel that works our way: on a secured
    /// edge whose handshake never answered there is no session key to seal the `close` with (it would only
    /// queue), though a request riding in the handshake may have been accepted.
    private func closeHalfOpenLinks(of attempt: Linker.Attempt) {
        // A relink's peer may have moved a connection we hold elsewhere to that edge: not half-open.
        guard attempt.hasSentRequest, attempt.refusal == nil, attempt.intent != .relink,
              let target = attempt.target, !table.contains(target) else { return }
        for edge in attempt.edgesTried.sorted() where edges[edge] != nil && table.peer(on: edge) == nil && !linker.isUsing(edge) {
            if let secured = securedEdge(edge), !secured.isEstablished { continue }
            send(.close(Close(reason: .trimmed, message: "our link attempt got no reply; nothing is linked here")), on: edge)
        }
    }

    // MARK: - Where peers see us

    /// Whether a transport of ours is bound to exactly `uri`, and whether to its host (a tunnel's URIs are
    /// neither: nil). The NAT mappings a transport lists are not its own: behind a symmetric NAT a second
    /// mapping at the NAT's address is another mapping, not a connection's source port on our host.
    private func binding(of uri: TransportURI) -> (isBound: Bool, isOwnHost: Bool)? {
        guard uri.scheme != tunnelListener?.scheme else { return nil }
        let host = uri.hostAndPort?.host
        var isOwnHost = false
        for listener in listeners where listener.scheme == uri.scheme {
            for local in listener.localURIs where !publicURIs.natMappings.contains(local) {
                if local == uri { return (true, true) }
                if host != nil && local.hostAndPort?.host == host { isOwnHost = true }
            }
        }
        return (false, isOwnHost)
    }

    /// Our transport of `scheme`, if we run one.
    func listener(for scheme: String) -> (any EdgeListener)? { listeners.first { $0.scheme == scheme } }

    /// A peer reached us at `uri` (a link request's observed URI).
    func noteReached(at uri: TransportURI) {
        guard let binding = binding(of: uri) else { return }
        let isMapping = listener(for: uri.scheme)?.observedURIsAreMappings ?? false
        if publicURIs.noteReached(at: uri, isBound: binding.isBound, isOwnHost: binding.isOwnHost, isMapping: isMapping) {
            cachedInfo = nil
        }
    }

    /// A peer saw us at `uri` (a link reply's observed URI).
    func learnObserved(_ uri: TransportURI, from reporter: Address) {
        let binding = binding(of: uri) ?? (false, true)
        let listener = listener(for: uri.scheme)
        let learned = publicURIs.learn(uri, from: reporter, isBound: binding.isBound, isOwnHost: binding.isOwnHost,
                                       isMapping: listener?.observedURIsAreMappings ?? false)
        if learned.reachabilityChanged || learned.mapsPerPeerChanged { cachedInfo = nil }
        if learned.mapsPerPeerChanged && publicURIs.mapsPerPeer { relayAttemptsThatCannotPunch() }
        guard learned.isNewest else { return }
        listener?.learnObservedURI(uri)
        cachedInfo = nil
        if learned.rebound || (awaitsNewMapping && publicURIs.natMappings.contains(uri)) {
            awaitsNewMapping = false
            reclaimAfterRebinding(scheme: uri.scheme)
        }
    }

    /// Our NAT maps per peer, we just learned (a second peer saw another port): attempts under way to peers
    /// behind NATs can never punch through, so their relay URIs start now rather than after `relay_after_ms`.
    /// (A joiner learns it from its second link, while its first attempts to ring neighbours are running.)
    private func relayAttemptsThatCannotPunch() {
        for attempt in linker.attempts.values.sorted(by: { $0.token < $1.token }) {
            guard let target = attempt.target else { continue }
            let relay = relayPlan(to: target, among: attempt.uris)
            if relay.atOnce { perform(linker.relayNow(token: attempt.token, fallbackURIs: relay.uris)) }
        }
    }

    static let interfaceCheckInterval: Duration = .seconds(1)

    /// Asks the transports whether the host's interface addresses changed.
    func checkInterfaceAddresses() {
        // Our own virtual IPs (on the TUN device, which comes up after the transports) are no underlay.
        var own = Set(edgeSecurity?.credentials.certificate.virtualIPs.map(\.description) ?? [])
        for ip in virtualInterface?.network.localIPs ?? [] { own.insert(ip.description) }
        var changed = false
        for listener in listeners where listener.followsInterfaceAddresses {
            if listener.refreshLocalAddresses(ignoring: own) { changed = true }
        }
        if changed { networkChanged() }
    }

    /// The host moved to another network (its interface addresses changed): every edge went through the old
    /// one, and every NAT mapping peers reported is stale. Rather than wait for each connection to fall
    /// silent, relink at once: to peers that list no relay URIs (not behind a NAT) over their direct URIs;
    /// the ones behind NATs are asked to link back (a Connect-To-Me through a peer that heard us at the new
    /// network) as soon as a peer reports our new mapping.
    func networkChanged() {
        logger.info("the host's addresses changed; relinking every connection", metadata: [
            "uris": "\(listeners.flatMap(\.localURIs).map(\.text).joined(separator: ", "))"])
        stats.networkChanges += 1
        publicURIs = PublicURIs()
        cachedInfo = nil
        awaitsNewMapping = true
        askedSecondView = false
        let tunnel = tunnelListener?.scheme
        for connection in table.connections where linker.attempt(to: connection.address) == nil {
            let uris = connection.peer.uris
            guard !uris.isEmpty, !uris.contains(where: { $0.scheme == tunnel }) else { continue }
            startRelink(AttemptStart(token: random.next(), intent: .relink, target: connection.address, uris: uris,
                                     purpose: .own(connectToken: nil)))
        }
    }

    /// Our NAT gave us a new mapping: peers still send to the old one, which is filtered now. For every
    /// connection over that transport not heard from since, ask the peer (a Connect-To-Me of type `relink`,
    /// routed through the ring) to link to our new URIs while we link to its: both ends at once, so NATs on
    /// both sides open, and the connection moves to the new edge without losing its types.
    private func reclaimAfterRebinding(scheme: String) {
        let now = scheduler.now
        // The CTMs go out through a peer that just heard us at the new mapping: the others filter us now.
        guard let through = table.connections.filter({ now - $0.lastHeard <= .seconds(1) })
            .max(by: { $0.lastHeard < $1.lastHeard }) else { return }
        logger.debug("our NAT mapping changed; asking peers to link to the new one", metadata: ["through": "\(through.address.short)"])
        for connection in table.connections where connection.transport == scheme
            && now - connection.lastHeard > .seconds(1) && linker.attempt(to: connection.address) == nil {
            relinkBothWays(connection.address, uris: connection.peer.uris, through: through.edgeID)
        }
    }

    /// Moves a connection to a new edge from both ends at once: a Connect-To-Me of type `relink` asks the peer
    /// to link to our URIs while we link to `uris` with a `relink` attempt that is part of it, so both ends
    /// punch before they send (see `Linker`). The CTM is routed, or sent on `through` (a first hop known to
    /// reach the ring when routing would pick a stale connection). `offering`: the transports the peer is asked
    /// to link over (all by default).
    func relinkBothWays(_ peer: Address, uris: [TransportURI], through: EdgeID? = nil, offering schemes: Set<String>? = nil) {
        let own = info
        let offered = schemes.map { schemes in NodeInfo(address: own.address, uris: own.uris.filter { schemes.contains($0.scheme) }) }
        let ctm = ConnectToMe(token: random.next(), intent: .relink, requester: offered ?? own, gateway: nil)
        var packet = RoutedPacket(header: RoutedHeader(mode: .exact, payloadType: .connectToMe, source: address,
                                                       destination: peer), payload: ctm.encoded())
        if let through {
            packet.header.hops = 1
            run(.sendRouted(packet, on: through))
        } else {
            route(packet, previous: nil)
        }
        guard !uris.isEmpty else { return }
        startRelink(AttemptStart(token: random.next(), intent: .relink, target: peer, uris: uris,
                                 purpose: .own(connectToken: ctm.token)))
    }

    /// Starts a relink attempt of ours, remembering which edge the connection was on (`LinkResponder.relinks`).
    func startRelink(_ start: AttemptStart) {
        if let peer = start.target, let edge = table.connection(to: peer)?.edgeID {
            responder.relinkStarted(token: start.token, peer: peer, connectionEdge: edge)
        }
        startAttempt(start)
    }
}
