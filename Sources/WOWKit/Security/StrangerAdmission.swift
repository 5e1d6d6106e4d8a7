import Crypto
import NIOCore

/// What a secured node makes of a packet from a remote that has no edge (docs/security.md, "Admission"):
/// only a handshake init with this network's admission MAC makes an edge; anything else is dropped with no
/// state kept, and answered (a refusal, or "unknown session" for a member whose session this node lost) at
/// most `repliesPerSecond` times a second for all strangers together, so that a flood with forged sources
/// costs one HMAC per packet at most and cannot turn the node into a reflector.
///
/// **Replays.** A genuine init captured and replayed from forged sources passes the MAC. Each init's
/// admission MAC is unique (it covers a fresh ephemeral key), so the node remembers the MACs of the last
/// `rememberedInits` inits it judged and where each came from: the same init again from another source is
/// a replay, dropped with no work and no answer (from the same source it is the initiator sending it again,
/// and judged as before). State per genuine init, bounded; none per remote.
///
/// **Cookies.** Inits are admitted at `admissionsPerSecond` (a burst of `admissionBurst`); beyond that the
/// node is busy, and an init is admitted only with a cookie MAC under the cookie for its source (a MAC of the
/// source under a secret that changes every 2 minutes); any other gets a cookie frame back (smaller than the
/// init, at most `cookiesPerSecond`), and a real initiator sends its init again with the cookie's MAC: one
/// round trip more, only while busy. A flooder with forged sources never sees its cookies. A bucket rather
/// than a count per second spreads the signature checks: a burst at each second's start would stall the node.
///
/// A state machine on the node's clock, without I/O; confined to the node's executor.
struct StrangerAdmission {
    /// Answers to strangers per second, and the burst allowed at once.
    static let repliesPerSecond = 10
    /// Inits admitted per second without a cookie, and at once.
    static let admissionsPerSecond = 100
    static let admissionBurst = 20
    /// Cookie frames per second at most (and at once).
    static let cookiesPerSecond = 1_000
    /// How long one cookie secret is used; a cookie of the one before is still taken.
    static let cookieEpoch = Duration.seconds(120)
    /// Inits whose MAC and source are remembered (a replay of an older one is judged as a new init).
    static let rememberedInits = 4_096

    private var replies = TokenBucket(rate: Double(StrangerAdmission.repliesPerSecond),
                                      burst: Double(StrangerAdmission.repliesPerSecond))
    private var admissions = TokenBucket(rate: Double(StrangerAdmission.admissionsPerSecond),
                                         burst: Double(StrangerAdmission.admissionBurst))
    private var cookies = TokenBucket(rate: Double(StrangerAdmission.cookiesPerSecond),
                                      burst: Double(StrangerAdmission.cookiesPerSecond / 10))
    /// The source of each remembered init, by the first 8 bytes of its admission MAC (unforgeable, so no
    /// outsider can make two collide), and the order they came in, oldest first from `oldest`.
    private var initSources: [UInt64: String] = [:]
    private var initOrder: [UInt64] = []
    private var oldest = 0
    private let secret: SymmetricKey

    init(secret: SymmetricKey = SymmetricKey(size: .bits256)) { self.secret = secret }

    /// Whether cookies are asked for (as of the last init judged).
    var isBusy: Bool { admissions.tokens < 1 }

    /// Replayed inits dropped so far.
    private(set) var replaysDropped = 0

    /// The verdict on `packet` from `source` (a stable text, e.g. the remote's URI; asked only while busy)
    /// at `now`: the admission, and the refusal to count and log, if any.
    mutating func judge(_ packet: ByteBuffer, _ credentials: NodeCredentials, from source: () -> String = { "" },
                        at now: Timestamp) -> (admission: EdgeAdmission, refusal: SecurityRefusal?) {
        guard packet.readableBytes >= 2,
              let kind = packet.getInteger(at: packet.readerIndex + 1, as: UInt8.self) else { return (.drop, nil) }
        guard SecureFrame.isSecureFrame(packet) else {
            // An edge message: the sender runs without security. Anything else is noise, not answered.
            guard packet.getInteger(at: packet.readerIndex, as: UInt8.self) == WireFormat.version,
                  EdgeMessage.Kind(rawValue: kind) != nil, replies.take(at: now) else { return (.drop, nil) }
            return (.reply(SecureFrame.refused(.noCertificate)), .noCertificate)
        }
        switch kind {
        case SecureFrame.initKind:
            if AdmissionKey.hasInitLayout(packet) {
                // Looked up before the MAC is checked: a replay costs no HMAC (only genuine inits are remembered).
                let key = macKey(of: packet)
                if let seen = initSources[key], seen != source() {
                    replaysDropped += 1
                    return (.drop, nil)
                }
                if credentials.admissionKey.isValid(packet) {
                    remember(key, from: source)
                    return admitInit(packet, from: source, at: now)
                }
            }
            guard replies.take(at: now) else { return (.drop, nil) }
            // Read off the certificate only now, a few times a second at most.
            let refusal = SecureFrame.admissionRefusal(of: packet, credentials)
            return (.reply(SecureFrame.refused(refusal)), refusal)
        case SecureFrame.sealedKind:
            // A member still sealing under a session this node no longer has (it restarted, or forgot the
            // edge): tell it, so it handshakes again at once rather than when its path watch gives up.
            guard let index = packet.getInteger(at: packet.readerIndex + 2, endianness: .big, as: UInt32.self),
                  replies.take(at: now) else { return (.drop, nil) }
            return (.reply(SecureFrame.unknownSession(index)), nil)
        default:
            // Responses, refusals and unknown-session notes only mean something on an edge of ours.
            return (.drop, nil)
        }
    }

    /// The first 8 bytes of an init's admission MAC (its layout checked).
    private func macKey(of packet: ByteBuffer) -> UInt64 {
        packet.getInteger(at: packet.readerIndex + packet.readableBytes - AdmissionKey.trailerSize, as: UInt64.self) ?? 0
    }

    /// Remembers where a genuine init came from, forgetting the oldest beyond `rememberedInits`.
    private mutating func remember(_ key: UInt64, from source: () -> String) {
        guard initSources[key] == nil else { return }
        if initOrder.count < StrangerAdmission.rememberedInits {
            initOrder.append(key)
        } else {
            initSources[initOrder[oldest]] = nil
            initOrder[oldest] = key
            oldest = (oldest + 1) % initOrder.count
        }
        initSources[key] = source()
    }

    /// A member's init (its admission MAC checked, not a replay): admitted, unless busy and without its
    /// cookie's MAC.
    private mutating func admitInit(_ packet: ByteBuffer, from source: () -> String,
                                    at now: Timestamp) -> (admission: EdgeAdmission, refusal: SecurityRefusal?) {
        if admissions.take(at: now) { return (.accept, nil) }
        let source = source()
        let epoch = now.nanoseconds / StrangerAdmission.cookieEpoch.nanoseconds
        let current = cookie(for: source, epoch: epoch)
        if AdmissionKey.hasCookieMAC(packet, cookie: current)
            || AdmissionKey.hasCookieMAC(packet, cookie: cookie(for: source, epoch: epoch - 1)) {
            return (.accept, nil)
        }
        guard let index = packet.getInteger(at: packet.readerIndex + 2, endianness: .big, as: UInt32.self),
              cookies.take(at: now) else { return (.drop, nil) }
        return (.reply(SecureFrame.cookie(current, forInit: index)), nil)
    }

    /// The cookie of `source` in cookie epoch `epoch`.
    func cookie(for source: String, epoch: Int64) -> [UInt8] {
        var message = withUnsafeBytes(of: epoch.bigEndian) { Array($0) }
        message += Array(source.utf8)
        return Array(HMAC<SHA256>.authenticationCode(for: message, using: secret).prefix(SecureFrame.cookieSize))
    }
}

/// So many events a second, and a burst at once: `take` says whether one may happen now.
struct TokenBucket {
    let rate: Double
    let burst: Double
    private(set) var tokens: Double
    private var refilledAt: Timestamp?

    init(rate: Double, burst: Double) {
        self.rate = rate
        self.burst = burst
        tokens = burst
    }

    mutating func take(at now: Timestamp) -> Bool {
        if let refilledAt {
            tokens = min(burst, tokens + Double((now - refilledAt).nanoseconds) / 1e9 * rate)
        }
        refilledAt = now
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }
}
