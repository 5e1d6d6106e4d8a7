import Crypto
import NIOCore

/// What a secured node makes of a packet from a remote that has no edge (docs/security.md, "Admission"):
/// only a handshake init with this network's admission MAC makes an edge; anything else is dropped with no
/// state kept, and answered (a refusal, or "unknown session" for a member whose session this node lost) at
/// most `repliesPerSecond` times a second for all strangers together, so that a flood with forged sources
/// costs one HMAC per packet at most and cannot turn the node into a reflector.
///
/// **Cookies.** A genuine init replayed from forged sources passes the MAC and would cost a signature check
/// each. So once more than `busyAfter` inits were admitted within a second, an init is admitted only with a
/// cookie MAC under the cookie for its source (a MAC of the source under a secret that changes every 2
/// minutes); any other gets a cookie frame back (smaller than the init, at most `cookiesPerSecond`), and a
/// real initiator sends its init again with the cookie's MAC: one round trip more, only while busy. A
/// flooder with forged sources never sees its cookies.
///
/// A state machine on the node's clock, without I/O; confined to the node's executor.
struct StrangerAdmission {
    /// Answers to strangers per second, and the burst allowed at once.
    static let repliesPerSecond = 10
    /// Inits admitted within a second beyond which the node is busy and asks for cookies.
    static let busyAfter = 100
    /// Cookie frames per second at most.
    static let cookiesPerSecond = 1_000
    /// How long one cookie secret is used; a cookie of the one before is still taken.
    static let cookieEpoch = Duration.seconds(120)

    private var tokens = Double(StrangerAdmission.repliesPerSecond)
    private var refilledAt: Timestamp?
    /// Inits admitted, and cookies sent, in the second that started at `secondStart`.
    private var admittedThisSecond = 0
    private var cookiesThisSecond = 0
    private var secondStart: Timestamp?
    private let secret: SymmetricKey

    init(secret: SymmetricKey = SymmetricKey(size: .bits256)) { self.secret = secret }

    /// Whether cookies are asked for now.
    var isBusy: Bool { admittedThisSecond >= StrangerAdmission.busyAfter }

    /// The verdict on `packet` from `source` (a stable text, e.g. the remote's URI; asked only while busy)
    /// at `now`: the admission, and the refusal to count and log, if any.
    mutating func judge(_ packet: ByteBuffer, _ credentials: NodeCredentials, from source: () -> String = { "" },
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
            if AdmissionKey.hasInitLayout(packet), credentials.admissionKey.isValid(packet) {
                return admitInit(packet, from: source, at: now)
            }
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

    /// A member's init (its admission MAC checked): admitted, unless busy and without its cookie's MAC.
    private mutating func admitInit(_ packet: ByteBuffer, from source: () -> String,
                                    at now: Timestamp) -> (admission: EdgeAdmission, refusal: SecurityRefusal?) {
        if let secondStart, now - secondStart < .seconds(1) {} else {
            secondStart = now
            admittedThisSecond = 0
            cookiesThisSecond = 0
        }
        if isBusy {
            let source = source()
            let epoch = now.nanoseconds / StrangerAdmission.cookieEpoch.nanoseconds
            let current = cookie(for: source, epoch: epoch)
            guard AdmissionKey.hasCookieMAC(packet, cookie: current)
                    || AdmissionKey.hasCookieMAC(packet, cookie: cookie(for: source, epoch: epoch - 1)) else {
                guard cookiesThisSecond < StrangerAdmission.cookiesPerSecond,
                      let index = packet.getInteger(at: packet.readerIndex + 2, endianness: .big, as: UInt32.self)
                else { return (.drop, nil) }
                cookiesThisSecond += 1
                return (.reply(SecureFrame.cookie(current, forInit: index)), nil)
            }
        }
        admittedThisSecond += 1
        return (.accept, nil)
    }

    /// The cookie of `source` in cookie epoch `epoch`.
    func cookie(for source: String, epoch: Int64) -> [UInt8] {
        var message = withUnsafeBytes(of: epoch.bigEndian) { Array($0) }
        message += Array(source.utf8)
        return Array(HMAC<SHA256>.authenticationCode(for: message, using: secret).prefix(SecureFrame.cookieSize))
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
