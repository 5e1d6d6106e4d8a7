import NIOCore

/// A secured node's end-to-end sessions: one `SecureChannel` per node it exchanges data with over the ring
/// (not a direct peer), carried in routed packets of type `secure`, so the nodes on the way see the routing
/// header only. A value the node owns; it takes the environment and the random generator with each event.
public struct EndToEndSessions {
    private var channels: [Address: SecureChannel] = [:]

    public init() {}

    /// How many sessions are in use.
    public var establishedCount: Int { channels.values.filter(\.isEstablished).count }

    /// Application data for `destination`: a `data` payload type byte and the data, sealed (or held while the
    /// handshake runs).
    public mutating func seal(_ data: ByteBuffer, for destination: Address, _ env: SecureChannel.Environment,
                              random: inout SeededRandom) -> SecureChannel.Outputs {
        var plaintext = ByteBuffer()
        plaintext.reserveCapacity(1 + data.readableBytes)
        plaintext.writeInteger(PayloadType.data.rawValue)
        plaintext.writeImmutableBuffer(data)
        return channels[destination, default: SecureChannel(expectedPeer: destination)].send(plaintext, env, random: &random)
    }

    /// A `secure` frame from `source`.
    public mutating func open(_ frame: ByteBuffer, from source: Address, _ env: SecureChannel.Environment,
                              random: inout SeededRandom) -> SecureChannel.Outputs {
        channels[source, default: SecureChannel(expectedPeer: source)].receive(frame, env, random: &random)
    }

    /// When the earliest unanswered init with plaintext behind it is due again (`SecureChannel.retransmitDue`).
    public func retransmitDue(_ settings: SecureChannel.Settings) -> Timestamp? {
        channels.values.compactMap { $0.retransmitDue(settings) }.min()
    }

    /// The same for the session with `peer` only.
    public func retransmitDue(for peer: Address, _ settings: SecureChannel.Settings) -> Timestamp? {
        channels[peer]?.retransmitDue(settings)
    }

    /// Sends every init that is due again, peer by peer (or gives up on it: `SecureChannel.retransmit`).
    public mutating func retransmit(_ env: SecureChannel.Environment) -> [(peer: Address, outputs: SecureChannel.Outputs)] {
        outputsByPeer { $0.retransmit(env) }
    }

    /// Sends again every unanswered init that went out at least `wait` ago (`SecureChannel.resendInit`).
    public mutating func resendInits(_ env: SecureChannel.Environment,
                                     ifUnansweredFor wait: Duration) -> [(peer: Address, outputs: SecureChannel.Outputs)] {
        outputsByPeer { $0.resendInit(env, ifUnansweredFor: wait) }
    }

    /// `body` run on every session, peer by peer in address order; the peers it had something to send for.
    private mutating func outputsByPeer(_ body: (inout SecureChannel) -> SecureChannel.Outputs)
        -> [(peer: Address, outputs: SecureChannel.Outputs)] {
        channels.keys.sorted().compactMap { peer in
            let outputs = body(&channels[peer]!)
            return outputs.isEmpty ? nil : (peer, outputs)
        }
    }

    /// A router reported `peer` absent from the ring (`SecureChannel.peerUnreachable`).
    public mutating func peerUnreachable(_ peer: Address) -> SecureChannel.Outputs {
        channels[peer]?.peerUnreachable() ?? []
    }

    /// Starts a new handshake in every session in use (renewed credentials), peer by peer.
    public mutating func handshakeAll(_ env: SecureChannel.Environment,
                                      random: inout SeededRandom) -> [(peer: Address, outputs: SecureChannel.Outputs)] {
        channels.keys.sorted().compactMap { peer in
            guard channels[peer]?.isEstablished == true else { return nil }
            return (peer, channels[peer]!.handshake(env, random: &random))
        }
    }

    /// Sessions whose peer's certificate is no longer in good standing (expired, revoked) are closed, and idle
    /// ones forgotten; returns the closed ones with why.
    public mutating func sweep(_ credentials: NodeCredentials, unixTime: Int64, now: Timestamp,
                               settings: SecureChannel.Settings) -> [(peer: Address, refusal: SecurityRefusal)] {
        var closed: [(Address, SecurityRefusal)] = []
        for (peer, channel) in channels.sorted(by: { $0.key < $1.key }) {
            if let certificate = channel.peer, let refusal = credentials.checkStanding(certificate, at: unixTime) {
                closed.append((peer, refusal))
                channels[peer] = nil
            } else if channel.isIdle(at: now, settings: settings) {
                channels[peer] = nil
            }
        }
        return closed
    }

    public mutating func removeAll() { channels.removeAll() }

    /// The certificate `peer` proved in its session, if one was established.
    public func certificate(of peer: Address) -> MembershipCertificate? { channels[peer]?.peer }

    /// A certificate a peer proved in its session that `matches`, if any.
    func certificate(where matches: (MembershipCertificate) -> Bool) -> MembershipCertificate? {
        channels.values.lazy.compactMap(\.peer).first(where: matches)
    }
}
