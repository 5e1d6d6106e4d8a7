import NIOCore

/// What a secured node makes of a packet from a remote that has no edge (docs/security.md, "Admission"):
/// only a handshake init with this network's admission MAC makes an edge; anything else is dropped with no
/// state kept, and answered (a refusal, or "unknown session" for a member whose session this node lost) at
/// most `repliesPerSecond` times a second for all strangers together, so that a flood with forged sources
/// costs one HMAC per packet at most and cannot turn the node into a reflector.
///
/// A state machine on the node's clock, without I/O; confined to the node's executor.
struct StrangerAdmission {
    /// Answers to strangers per second, and the burst allowed at once.
    static let repliesPerSecond = 10
    private var tokens = Double(StrangerAdmission.repliesPerSecond)
    private var refilledAt: Timestamp?

    /// The verdict on `packet` at `now`: the admission, and the refusal to count and log, if any.
    mutating func judge(_ packet: ByteBuffer, _ credentials: NodeCredentials,
                        at now: Timestamp) -> (admission: EdgeAdmission, refusal: SecurityRefusal?) {
        guard packet.readableBytes >= 2,
              let kind = packet.getInteger(at: packet.readerIndex + 1, as: UInt8.self) else { return (.drop, nil) }
        guard SecureFrame.isSecureFrame(packet) else {
            // An edge message: the sender runs without security. Anything else is noise, not answered.
            guard packet.getInteger(at: packet.readerIndex, as: UInt8.self) == WireFormat.version,
                  EdgeMessage.Kind(rawValue: kind) != nil, mayReply(at: now) else { return (.drop, nil) }
            return (.reply(SecureFrame.refused(.noCertificate)), .noCertificate)
        }
        switch kind {
        case SecureFrame.initKind:
            if credentials.admissionKey.isValid(packet) { return (.accept, nil) }
            guard mayReply(at: now) else { return (.drop, nil) }
            // Read off the certificate only now, a few times a second at most.
            let refusal = SecureFrame.admissionRefusal(of: packet, credentials)
            return (.reply(SecureFrame.refused(refusal)), refusal)
        case SecureFrame.sealedKind:
            // A member still sealing under a session this node no longer has (it restarted, or forgot the
            // edge): tell it, so it handshakes again at once rather than when its path watch gives up.
            guard let index = packet.getInteger(at: packet.readerIndex + 2, endianness: .big, as: UInt32.self),
                  mayReply(at: now) else { return (.drop, nil) }
            return (.reply(SecureFrame.unknownSession(index)), nil)
        default:
            // Responses, refusals and unknown-session notes only mean something on an edge of ours.
            return (.drop, nil)
        }
    }

    private mutating func mayReply(at now: Timestamp) -> Bool {
        let rate = Double(StrangerAdmission.repliesPerSecond)
        if let refilledAt {
            tokens = min(rate, tokens + Double((now - refilledAt).nanoseconds) / 1e9 * rate)
        }
        refilledAt = now
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }
}
