import Logging
import NIOCore

/// Edge security and end-to-end sessions (docs/security.md): the node's side of `SecureChannel`.
///
/// A secured node speaks on every edge only through that edge's channel: every edge message is sealed, and
/// plaintext from the other end is refused (it runs without security). Which node sits behind an edge is
/// known from the channel's certificate; link requests and replies must claim the address that certificate
/// entitles. Exact-mode data for a node that is not a direct peer goes end to end through a channel of its
/// own, carried in routed packets of type `secure`, so the nodes on the way see the routing header only.
extension Node {
    /// What a channel needs for one event.
    private var channelEnvironment: SecureChannel.Environment? { channelEnvironment(checkingCertificates: true) }

    /// The environment for one event. Only a received handshake checks certificates against the wall clock;
    /// sealing, opening and starting a handshake do not, so the packet path skips reading the clock.
    private func channelEnvironment(checkingCertificates: Bool) -> SecureChannel.Environment? {
        guard let security else { return nil }
        return SecureChannel.Environment(credentials: security.credentials, settings: security.settings,
                                         now: scheduler.now, unixTime: checkingCertificates ? wallClock() : 0)
    }

    // MARK: - Edges

    /// Seals an encoded edge message on edge `id` (or holds it while the edge's handshake runs). Encoded with
    /// `SecureChannel.sealingHeadroom` and `sealingTailroom` free around it, it is sealed in its own buffer.
    func sendSecured(_ plaintext: consuming ByteBuffer, on id: EdgeID) {
        guard let env = channelEnvironment(checkingCertificates: false) else { return }
        let outputs = edgeChannels[id, default: SecureChannel()].send(consume plaintext, env, random: &random)
        carryOut(outputs, on: id)
    }

    /// A secure frame arrived on edge `id`.
    func receiveSecureFrame(_ frame: ByteBuffer, on id: EdgeID) {
        let isSealed = frame.getInteger(at: frame.readerIndex + 1, as: UInt8.self) == SecureFrame.sealedKind
        guard let env = channelEnvironment(checkingCertificates: !isSealed) else {
            // We run without security: tell a secured peer why its handshake goes nowhere.
            guard frame.getInteger(at: frame.readerIndex + 1, as: UInt8.self) == SecureFrame.initKind else {
                guard let refusal = try? SecureFrame.refusal(in: frame) else { return stats.drop("secure_frame_without_security") }
                return logRefusal(refusal, on: id)
            }
            return refuse(.securityDisabled, on: id)
        }
        // Opened into the node's one buffer for edge plaintext: the packet is done with before the next one
        // arrives, so the same storage takes every frame.
        let outputs = edgeChannels[id, default: SecureChannel()].receive(frame, env, random: &random,
                                                                         openingInto: &edgePlaintext)
        carryOut(outputs, on: id)
    }

    /// A packet that is not a secure frame reaching a secured node: an edge message means the sender runs
    /// without security (counted as `no_certificate` and refused); anything shorter is just malformed.
    func refusePlaintext(_ packet: ByteBuffer, on id: EdgeID) {
        guard packet.readableBytes >= 2 else { return stats.drop(WireError.truncated(field: "kind").reason) }
        refuse(.noCertificate, on: id)
    }

    /// Sends the peer a `refused` frame and logs why, at most once a second per edge.
    private func refuse(_ refusal: SecurityRefusal, on id: EdgeID) {
        guard let record = edges[id] else { return }
        let now = scheduler.now
        let recently = record.refusedAt.map { now - $0 < .seconds(1) } ?? false
        logRefusal(refusal, on: id)
        if !recently { transmit(SecureFrame.refused(refusal), on: id) }
    }

    /// Logs a refusal (ours or the peer's) with the edge's remote URI: a warning the first time per edge
    /// and second, debug while it repeats.
    func logRefusal(_ refusal: SecurityRefusal, on id: EdgeID) {
        stats.drop(refusal.reason)
        guard let record = edges[id] else { return }
        let now = scheduler.now
        let repeated = record.refusedAt.map { now - $0 < .seconds(60) } ?? false
        edges[id]?.refusedAt = now
        let metadata: Logger.Metadata = ["peer_uri": "\(record.edge.remoteURI)", "reason": "\(refusal.reason)"]
        let text: Logger.Message = {
            if case .refusedByPeer = refusal { return "\(refusal.description)" }
            return "refusing \(record.edge.remoteURI): \(refusal.description)"
        }()
        logger.log(level: repeated ? .debug : .warning, text, metadata: metadata)
    }

    private func carryOut(_ outputs: SecureChannel.Outputs, on id: EdgeID) {
        for output in outputs {
            switch output {
            case .transmit(let frame): transmit(frame, on: id)
            case .deliver(let plaintext): handleEdgeMessage(plaintext, on: id)
            case .established(let certificate): edgeAuthenticated(id, as: certificate)
            case .refused(let refusal): logRefusal(refusal, on: id)
            case .dropped(let reason): stats.drop(reason)
            case .reachedSelf: edgeLeadsHere(id)
            }
        }
    }

    /// A new session on edge `id` is in use. If another node than the connection's peer now sits behind the
    /// edge (the NAT mapping went to someone else), the connection is not on this edge any more.
    private func edgeAuthenticated(_ id: EdgeID, as certificate: MembershipCertificate) {
        logger.trace("edge authenticated", metadata: ["edge": "\(id)", "peer": "\(certificate.name)"])
        if let connection = table.connection(on: id), connection.address != certificate.entitledAddress {
            removeConnection(connection.address, reason: "another node answers on its edge")
        }
    }

    /// Our own handshake came back on edge `id`: its URI is ours. Attempts on it fail as they would on a
    /// `selfLink` link error.
    private func edgeLeadsHere(_ id: EdgeID) {
        guard let record = edges[id] else { return }
        ownURIs.insert(record.edge.remoteURI)
        cachedInfo = nil
        for attempt in linker.attempts.values where attempt.edge == id {
            perform(linker.errorReceived(LinkError(token: attempt.token, code: .selfLink, message: "the URI leads back here"),
                                         on: id))
        }
    }

    /// Why the node behind edge `id` may not claim `claimed`; nil when it may (or the node is not secured).
    func entitlementRefusal(claimed: Address, on id: EdgeID) -> SecurityRefusal? {
        guard security != nil, let certificate = edgeChannels[id]?.peer else {
            return security == nil ? nil : .noCertificate
        }
        let entitled = certificate.entitledAddress
        guard claimed != entitled else { return nil }
        return .addressNotEntitled(name: certificate.name, claimed: claimed, entitled: entitled)
    }

    // MARK: - End to end

    /// Seals `data` for `destination` in its end-to-end session and routes the frame(s).
    func sendEndToEnd(_ data: ByteBuffer, to destination: Address, ttl: UInt8) {
        guard let env = channelEnvironment(checkingCertificates: false) else { return }
        var plaintext = ByteBuffer()
        plaintext.reserveCapacity(1 + data.readableBytes)
        plaintext.writeInteger(PayloadType.data.rawValue)
        plaintext.writeImmutableBuffer(data)
        let outputs = peerChannels[destination, default: SecureChannel(expectedPeer: destination)]
            .send(plaintext, env, random: &random)
        carryOut(outputs, endToEnd: destination, ttl: ttl)
    }

    /// A `secure` routed packet reached us (`header` is its routed header).
    func receiveEndToEnd(_ frame: ByteBuffer, header: RoutedHeader) {
        let isSealed = frame.getInteger(at: frame.readerIndex + 1, as: UInt8.self) == SecureFrame.sealedKind
        guard let env = channelEnvironment(checkingCertificates: !isSealed) else { return }
        let source = header.source
        let outputs = peerChannels[source, default: SecureChannel(expectedPeer: source)].receive(frame, env, random: &random)
        carryOut(outputs, endToEnd: source, ttl: RoutedHeader.defaultTTL, hops: header.hops)
    }

    private func carryOut(_ outputs: SecureChannel.Outputs, endToEnd peer: Address, ttl: UInt8, hops: UInt8 = 0) {
        for output in outputs {
            switch output {
            case .transmit(let frame):
                let header = RoutedHeader(ttl: ttl, mode: .exact, payloadType: .secure, source: address, destination: peer)
                route(RoutedPacket(header: header, payload: frame), previous: nil)
            case .deliver(var plaintext):
                guard let type = plaintext.readInteger(as: UInt8.self), PayloadType(rawValue: type) == .data else {
                    stats.drop("secure_unknown_payload")
                    continue
                }
                let header = RoutedHeader(hops: hops, mode: .exact, payloadType: .data, source: peer, destination: address)
                observer?.delivered(hops: hops)
                noteTraffic(with: peer, bytes: plaintext.readableBytes, isSent: false)
                onDeliver?(header, plaintext)
            case .established(let certificate):
                logger.trace("end-to-end session", metadata: ["peer": "\(peer.short)", "name": "\(certificate.name)"])
            case .refused(let refusal):
                stats.drop(refusal.reason)
                logger.warning("end-to-end session refused", metadata: ["peer": "\(peer.short)",
                                                                       "reason": "\(refusal.description)"])
            case .dropped(let reason): stats.drop(reason)
            case .reachedSelf: stats.drop("secure_reached_self")
            }
        }
    }

    // MARK: - Revocation and expiry

    /// Replaces the set of revoked certificates and at once disconnects peers whose certificate is in it.
    public func updateRevocations(_ revoked: Set<CertificateFingerprint>) {
        guard security != nil else { return }
        security?.credentials.revoked = revoked
        checkPeerCertificates()
    }

    /// Puts renewed credentials in use without a restart (`wow run` on SIGHUP): a new certificate (a later
    /// expiry, new virtual IPs that keep the address) or a new revocation list. Every session handshakes again
    /// at once, so peers hold the new certificate before the old one expires. Refused when the node would
    /// move (another entitled address) or change networks: that needs a restart.
    public func updateCredentials(_ credentials: NodeCredentials) throws(CredentialUpdateError) {
        guard let current = security else { throw .notSecured }
        guard credentials.authority == current.credentials.authority else { throw .otherNetwork }
        guard credentials.address == address else {
            throw .otherAddress(running: address, new: credentials.address)
        }
        let renewed = credentials.certificate != current.credentials.certificate
        security?.credentials = credentials
        checkPeerCertificates()
        guard renewed, let env = channelEnvironment else { return }
        logger.notice("certificate renewed", metadata: ["expires": "\(SecurityRefusal.date(credentials.certificate.notAfter))"])
        for id in Array(edgeChannels.keys) where edgeChannels[id]?.isEstablished == true {
            carryOut(edgeChannels[id, default: SecureChannel()].handshake(env, random: &random), on: id)
        }
        for peer in Array(peerChannels.keys) where peerChannels[peer]?.isEstablished == true {
            carryOut(peerChannels[peer, default: SecureChannel(expectedPeer: peer)].handshake(env, random: &random),
                     endToEnd: peer, ttl: RoutedHeader.defaultTTL)
        }
    }

    /// How often peers' certificates are checked against the clock and the revocation list.
    static let securityCheckInterval: Duration = .seconds(10)

    func scheduleSecurityCheck() {
        timers["security"] = schedule(after: Node.securityCheckInterval) { node in
            node.checkPeerCertificates()
            node.scheduleSecurityCheck()
        }
    }

    /// Disconnects every peer whose certificate expired or was revoked, and forgets idle end-to-end sessions.
    func checkPeerCertificates() {
        guard let security else { return }
        let unixTime = wallClock()
        if let problem = security.credentials.checkStanding(security.credentials.certificate, at: unixTime) {
            if !ownCertificateWarned {
                logger.error("this node's own certificate is not valid: peers will refuse it; issue a new one (wow cert issue)",
                             metadata: ["reason": "\(problem.description)"])
            }
            ownCertificateWarned = true
        }
        for (id, channel) in edgeChannels {
            guard let peer = channel.peer, let refusal = security.credentials.checkStanding(peer, at: unixTime) else { continue }
            logRefusal(refusal, on: id)
            send(.close(Close(reason: .notAuthorized, message: refusal.description)), on: id)
            if let connection = table.connection(on: id) {
                removeConnection(connection.address, reason: refusal.reason)
            }
            edges[id]?.edge.close()
            forget(id)
        }
        let now = scheduler.now
        for (peer, channel) in peerChannels {
            if let certificate = channel.peer, let refusal = security.credentials.checkStanding(certificate, at: unixTime) {
                logger.warning("end-to-end session closed", metadata: ["peer": "\(peer.short)", "reason": "\(refusal.description)"])
                peerChannels[peer] = nil
            } else if channel.isIdle(at: now, settings: security.settings) {
                peerChannels[peer] = nil
            }
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
