import Logging
import NIOCore

/// The node's side of security (docs/security.md). Edges are secured by wrapping (`SecuredEdge`, made in
/// `register`); what is left here: end-to-end sessions for data to nodes that are not direct peers, refusing
/// secure frames when the node runs without security, and peers' standing (expiry, revocation, renewal).
extension Node {
    // MARK: - Edges

    /// A secured edge learned who is behind it. If another node than the connection's peer now sits behind
    /// the edge (the NAT mapping went to someone else), the connection is not on this edge any more.
    public func securedEdge(_ edge: SecuredEdge, authenticated certificate: MembershipCertificate) {
        guard let id = edges.id(of: edge) else { return }
        logger.trace("edge authenticated", metadata: ["edge": "\(id)", "peer": "\(certificate.name)"])
        guard let peer = table.peer(on: id) else { return }
        if peer != certificate.entitledAddress { return removeConnection(peer, reason: "another node answers on its edge") }
        // A rekey we started measured the connection's path afresh.
        if let roundTrip = edge.handshakeRoundTrip { table.update(peer) { $0.roundTrip = roundTrip } }
    }

    /// Our own handshake came back on a secured edge: its URI is ours. Attempts on it fail as they would on a
    /// `selfLink` link error.
    public func securedEdgeReachedSelf(_ edge: SecuredEdge) {
        guard let id = edges.id(of: edge) else { return }
        ownURIs.insert(edge.remoteURI)
        cachedInfo = nil
        for attempt in linker.attempts.values.sorted(by: { $0.token < $1.token }) where attempt.edge == id {
            perform(linker.errorReceived(LinkError(token: attempt.token, code: .selfLink, message: "the URI leads back here"),
                                         on: id))
        }
    }

    public func securedEdge(_ edge: SecuredEdge, dropped reason: DropReason) {
        stats.drop(reason)
    }

    /// The secured edge with id `id`, if the node secures its edges.
    func securedEdge(_ id: EdgeID) -> SecuredEdge? { edges[id]?.edge as? SecuredEdge }

    /// Why the node behind edge `id` may not claim `claimed`; nil when it may (or the edge is not secured).
    func entitlementRefusal(claimed: Address, on id: EdgeID) -> SecurityRefusal? {
        guard let secured = securedEdge(id) else { return nil }
        guard let certificate = secured.peerCertificate else { return .noCertificate }
        let entitled = certificate.entitledAddress
        guard claimed != entitled else { return nil }
        return .addressNotEntitled(name: certificate.name, claimed: claimed, entitled: entitled)
    }

    /// Counts and logs a refusal on edge `id` (a secured one: only those refuse).
    func logRefusal(_ refusal: SecurityRefusal, on id: EdgeID) {
        guard let secured = securedEdge(id) else { return stats.drop(.refused(refusal)) }
        secured.logRefusal(refusal)
    }

    /// A secure frame reached this node, which runs without security: a handshake is told why it goes nowhere
    /// (at most once a second per edge), a peer's refusal is logged.
    func refuseSecureFrame(_ frame: ByteBuffer, on id: EdgeID) {
        guard let remoteURI = edges[id]?.edge.remoteURI else { return }
        let isInit = frame.getInteger(at: frame.readerIndex + 1, as: UInt8.self) == SecureFrame.initKind
        let refusal: SecurityRefusal
        if isInit {
            refusal = .securityDisabled
        } else {
            guard let theirs = try? SecureFrame.refusal(in: frame) else { return stats.drop(.secureFrameWithoutSecurity) }
            refusal = theirs
        }
        stats.drop(.refused(refusal))
        guard let (maySend, isRepeat) = edges[id]?.refusals.note(at: scheduler.now) else { return }
        if isInit && maySend { transmit(SecureFrame.refused(refusal), on: id, awaitsAnswer: false) }
        SecuredEdge.log(refusal, from: remoteURI, repeated: isRepeat, to: logger)
    }

    // MARK: - End to end

    /// Seals `data` for `destination` in its end-to-end session and routes the frame(s).
    func sendEndToEnd(_ data: ByteBuffer, to destination: Address, ttl: UInt8) {
        guard let edgeSecurity, endToEnd != nil else { return }
        let outputs = endToEnd!.seal(data, for: destination, edgeSecurity.environment(checkingCertificates: false),
                                    random: &random)
        carryOut(outputs, endToEnd: destination, ttl: ttl)
        armEndToEndRetransmit(for: destination)
    }

    /// A `secure` routed packet reached us (`header` is its routed header).
    func receiveEndToEnd(_ frame: ByteBuffer, header: RoutedHeader) {
        guard let edgeSecurity, endToEnd != nil else { return stats.drop(.securePayloadWithoutSecurity) }
        let isSealed = frame.getInteger(at: frame.readerIndex + 1, as: UInt8.self) == SecureFrame.sealedKind
        let outputs = endToEnd!.open(frame, from: header.source, edgeSecurity.environment(checkingCertificates: !isSealed),
                                    random: &random)
        carryOut(outputs, endToEnd: header.source, ttl: RoutedHeader.defaultTTL, hops: header.hops)
        armEndToEndRetransmit(for: header.source)
    }

    /// Arms the retransmit timer for `peer`'s unanswered init, unless it fires earlier already. Hot path: a
    /// dictionary lookup per packet.
    private func armEndToEndRetransmit(for peer: Address) {
        guard let edgeSecurity, let due = endToEnd?.retransmitDue(for: peer, edgeSecurity.settings),
              endToEndRetransmitAt.map({ due < $0 }) ?? true else { return }
        armEndToEndRetransmit(at: due)
    }

    private func armEndToEndRetransmit(at due: Timestamp) {
        endToEndRetransmitAt = due
        arm(.endToEndRetransmit, after: max(due - scheduler.now, .zero))
    }

    /// Sends again the end-to-end inits that went unanswered, and arms the timer for the next one due.
    func retransmitEndToEnd() {
        endToEndRetransmitAt = nil
        guard let edgeSecurity, endToEnd != nil else { return }
        carryOutByPeer(endToEnd!.retransmit(edgeSecurity.environment(checkingCertificates: false)))
        if let due = endToEnd!.retransmitDue(edgeSecurity.settings) { armEndToEndRetransmit(at: due) }
    }

    /// The table changed while our place in the ring forms: the end-to-end inits unanswered for a twentieth of
    /// `handshake_retry` (50 ms: a burst of changes sends each once) go again at once. A joiner's first packets
    /// to a member start the handshake before any node around the joiner's address knows it, so the response
    /// finds no way back; it waited for the retransmit (1 s) although the joiner was routable half a second in
    /// (the testbed's TCP-only and 443-only joiners: first replies at 1.05 s). With a quarter (250 ms) the
    /// init that went with the joiner's first connection was not sent again when its ring links followed
    /// 40-80 ms later, and the first reply still waited for the retransmit in most trials.
    func resendEndToEndInits() {
        guard let edgeSecurity, endToEnd != nil else { return }
        carryOutByPeer(endToEnd!.resendInits(edgeSecurity.environment(checkingCertificates: false),
                                             ifUnansweredFor: edgeSecurity.settings.handshakeRetry / 20))
    }

    /// What the end-to-end sessions had to send, peer by peer, routed to each peer.
    private func carryOutByPeer(_ outputsByPeer: [(peer: Address, outputs: SecureChannel.Outputs)]) {
        for (peer, outputs) in outputsByPeer { carryOut(outputs, endToEnd: peer, ttl: RoutedHeader.defaultTTL) }
    }

    /// A router reported `peer` absent from the ring: a first handshake with it ends, and what waited is
    /// dropped (`SecureChannel.peerUnreachable`); else the init would go again, and fail again, for as long.
    func endToEndPeerUnreachable(_ peer: Address) {
        guard endToEnd != nil else { return }
        carryOut(endToEnd!.peerUnreachable(peer), endToEnd: peer, ttl: RoutedHeader.defaultTTL)
    }

    private func carryOut(_ outputs: SecureChannel.Outputs, endToEnd peer: Address, ttl: UInt8, hops: UInt8 = 0) {
        for output in outputs {
            switch output {
            case .transmit(let frame):
                let header = RoutedHeader(ttl: ttl, mode: .exact, payloadType: .secure, source: address, destination: peer)
                route(RoutedPacket(header: header, payload: frame), previous: nil)
            case .deliver(var plaintext):
                guard let type = plaintext.readInteger(as: UInt8.self), PayloadType(rawValue: type) == .data else {
                    stats.drop(.secureUnknownPayload)
                    continue
                }
                let header = RoutedHeader(hops: hops, mode: .exact, payloadType: .data, source: peer, destination: address)
                observer?.delivered(hops: hops)
                noteTraffic(with: peer, bytes: plaintext.readableBytes, isSent: false)
                onDeliver?(header, plaintext)
            case .established(let certificate):
                logger.trace("end-to-end session", metadata: ["peer": "\(peer.short)", "name": "\(certificate.name)"])
            case .refused(let refusal):
                stats.drop(.refused(refusal))
                logger.warning("end-to-end session refused", metadata: ["peer": "\(peer.short)",
                                                                       "reason": "\(refusal.description)"])
            case .dropped(let reason): stats.drop(.secureSession(reason))
            case .reachedSelf: stats.drop(.secureReachedSelf)
            }
        }
    }

    // MARK: - Revocation, expiry and renewal

    /// Replaces the set of revoked certificates and at once disconnects peers whose certificate is in it.
    public func updateRevocations(_ revoked: Set<CertificateFingerprint>) {
        guard let edgeSecurity else { return }
        edgeSecurity.credentials.revoked = revoked
        checkPeerCertificates()
    }

    /// Puts renewed credentials in use without a restart (`wow run` on SIGHUP): a new certificate (a later
    /// expiry, new virtual IPs that keep the address) or a new revocation list. Every session handshakes again
    /// at once, so peers hold the new certificate before the old one expires. Refused when the node would
    /// move (another entitled address) or change networks: that needs a restart.
    public func updateCredentials(_ credentials: NodeCredentials) throws(CredentialUpdateError) {
        guard let edgeSecurity else { throw .notSecured }
        guard credentials.authority == edgeSecurity.credentials.authority else { throw .otherNetwork }
        guard credentials.address == address else {
            throw .otherAddress(running: address, new: credentials.address)
        }
        let renewed = credentials.certificate != edgeSecurity.credentials.certificate
        edgeSecurity.credentials = credentials
        checkPeerCertificates()
        guard renewed else { return }
        logger.notice("certificate renewed", metadata: ["expires": "\(SecurityRefusal.date(credentials.certificate.notAfter))"])
        for (_, record) in edges.sorted {
            guard let secured = record.edge as? SecuredEdge, secured.isEstablished else { continue }
            secured.handshake()
        }
        for (peer, outputs) in endToEnd?.handshakeAll(edgeSecurity.environment(checkingCertificates: true), random: &random) ?? [] {
            carryOut(outputs, endToEnd: peer, ttl: RoutedHeader.defaultTTL)
        }
    }

    /// How often peers' certificates are checked against the clock and the revocation list.
    static let securityCheckInterval: Duration = .seconds(10)

    /// Disconnects every peer whose certificate expired or was revoked, and forgets idle end-to-end sessions.
    func checkPeerCertificates() {
        guard let edgeSecurity else { return }
        let credentials = edgeSecurity.credentials
        let unixTime = wallClock()
        if let problem = credentials.checkStanding(credentials.certificate, at: unixTime) {
            if !ownCertificateWarned {
                logger.error("this node's own certificate is not valid: peers will refuse it; issue a new one (wow cert issue)",
                             metadata: ["reason": "\(problem.description)"])
            }
            ownCertificateWarned = true
        }
        for (id, record) in edges.sorted {
            guard let secured = record.edge as? SecuredEdge, let peer = secured.peerCertificate,
                  let refusal = credentials.checkStanding(peer, at: unixTime) else { continue }
            secured.logRefusal(refusal)
            send(.close(Close(reason: .notAuthorized, message: refusal.description)), on: id)
            if let peer = table.peer(on: id) {
                removeConnection(peer, reason: refusal.reason)
            }
            record.edge.close()
            forget(id)
        }
        for (peer, refusal) in endToEnd?.sweep(credentials, unixTime: unixTime, now: scheduler.now,
                                                settings: edgeSecurity.settings) ?? [] {
            logger.warning("end-to-end session closed", metadata: ["peer": "\(peer.short)", "reason": "\(refusal.description)"])
        }
    }
}

/// Why new credentials cannot be put in use while the node runs.
public enum CredentialUpdateError: Error, Equatable, Sendable, CustomStringConvertible {
    case notSecured
    case otherNetwork
    case otherAddress(running: Address, new: Address)

    public var description: String {
        switch self {
        case .notSecured: return "the node runs without security; restart it to secure it"
        case .otherNetwork: return "the new credentials are of another network authority; restart the node to change networks"
        case .otherAddress(let running, let new):
            return "the new certificate entitles ring address \(new.short), the node runs at \(running.short); restart it to move"
        }
    }
}
