import Crypto
import Logging
import NIOCore

/// What every secured edge of one node shares: its credentials and session limits, the clock, the node's
/// random generator, and the one buffer frames are opened into.
///
/// Confined to the node's executor, like the node and its edges.
public final class EdgeSecurity {
    public internal(set) var credentials: NodeCredentials {
        get { sharedCredentials.credentials }
        set { sharedCredentials = SharedCredentials(newValue) }
    }
    /// What every environment refers to (`SecureChannel.Environment`).
    private var sharedCredentials: SharedCredentials
    public let settings: SecureChannel.Settings
    let scheduler: any Scheduler
    /// Seconds since 1970, for certificate validity (virtual time in the simulator).
    var wallClock: () -> Int64
    /// The node's static key, with which its inits carry first messages (advertised in its NodeInfo).
    public let staticKey: StaticHandshakeKey
    /// The node's generator: handshakes draw from it in the order the node's events come, so a seed replays.
    let random: RandomSource
    let logger: Logger
    /// Where frames are opened: one buffer, reused for every frame once the last plaintext is let go (a
    /// packet is done with before the next one arrives).
    var plaintext = ByteBuffer()

    init(credentials: NodeCredentials, settings: SecureChannel.Settings, scheduler: any Scheduler,
         wallClock: @escaping () -> Int64, stampClock: @escaping () -> UInt64 = SystemClock.unixMicroseconds,
         random: RandomSource, logger: Logger) {
        self.sharedCredentials = SharedCredentials(credentials)
        self.settings = settings
        self.scheduler = scheduler
        self.wallClock = wallClock
        self.random = random
        self.logger = logger
        // Derived from the node's identity: the same after a restart, so a bootstrap list that names it stays true
        // (and drawing it would shift the generator's later draws, which a simulator seed replays).
        staticKey = StaticHandshakeKey(identity: credentials.identity, clock: stampClock)
    }

    /// The environment for one event. Only a received handshake checks certificates against the wall clock;
    /// sealing, opening and starting a handshake do not, so the packet path skips reading the clock.
    func environment(checkingCertificates: Bool) -> SecureChannel.Environment {
        SecureChannel.Environment(sharedCredentials: sharedCredentials, settings: settings, now: scheduler.now,
                                  unixTime: checkingCertificates ? wallClock() : 0, staticKey: staticKey)
    }
}

/// The node's random generator, shared by reference with what draws from it on the node's behalf.
public final class RandomSource {
    public var generator: SeededRandom
    public init(_ generator: SeededRandom) { self.generator = generator }
}

/// Told what a secured edge learns besides the messages it delivers (`EdgeDelegate`).
public protocol SecuredEdgeDelegate: EdgeDelegate {
    /// A new session is in use on `edge`, with the node holding `certificate`.
    func securedEdge(_ edge: SecuredEdge, authenticated certificate: MembershipCertificate)
    /// Our own handshake came back on `edge`: its URI leads to this node.
    func securedEdgeReachedSelf(_ edge: SecuredEdge)
    /// A frame was dropped or refused.
    func securedEdge(_ edge: SecuredEdge, dropped reason: DropReason)
}

/// Any edge, secured (docs/security.md): everything sent is sealed by the edge's secure session (or held while
/// its handshake runs), every frame received is opened and its plaintext delivered; plaintext from the other
/// end is refused (it runs without security), and refusals are sent and logged at most once a second.
///
/// The node wraps every edge it registers in one when it is secured, so every transport (udp, tcp, tls, the
/// relay, the memory network) is secured by this one code path, and the node speaks plaintext edge messages
/// to its edges either way. Which node sits behind the edge is the session's certificate (`peerCertificate`).
public final class SecuredEdge: Edge, EdgeDelegate {
    /// The edge underneath, which carries the frames.
    public let inner: any Edge
    private let security: EdgeSecurity
    private var channel = SecureChannel()
    private var refusals = RefusalRateLimit()

    public weak var delegate: (any EdgeDelegate)?
    private var securedDelegate: (any SecuredEdgeDelegate)? { delegate as? any SecuredEdgeDelegate }

    /// Becomes `inner`'s delegate. The inner edge holds it strongly until it reports `edgeDidClose` (the `Edge`
    /// contract), so the pair lives exactly as long as the open edge: the node closes every edge it forgets.
    init(wrapping inner: any Edge, security: EdgeSecurity) {
        self.inner = inner
        self.security = security
        inner.delegate = self
    }

    public var transport: String { inner.transport }
    public var localURI: TransportURI { inner.localURI }
    public var remoteURI: TransportURI { inner.remoteURI }
    public var isInbound: Bool { inner.isInbound }
    public var isClosed: Bool { inner.isClosed }
    public var framingHeadroom: Int { inner.framingHeadroom + SecureChannel.sealingHeadroom }
    public var framingTailroom: Int { inner.framingTailroom + SecureChannel.sealingTailroom }

    /// The certificate of the node behind the edge, once a session is in use.
    public var peerCertificate: MembershipCertificate? { channel.peer }
    /// Whether a session is in use.
    public var isEstablished: Bool { channel.isEstablished }
    /// The round trip of the last handshake this end started, if one was answered (`SecureChannel`).
    public var handshakeRoundTrip: Duration? { channel.handshakeRoundTrip }
    /// Messages held until the handshake completes.
    public var queuedCount: Int { channel.queuedCount }
    /// Whether the init under way carries first messages (`SecureChannel.initCarriesFirstMessages`).
    public var initCarriesFirstMessages: Bool { channel.initCarriesFirstMessages }

    /// The address the session's certificate entitles, once a session is in use.
    public var authenticatedAddress: Address? { channel.isEstablished ? channel.peer?.entitledAddress : nil }

    /// Seals an encoded edge message (or holds it while the handshake runs). Encoded with
    /// `SecureChannel.sealingHeadroom` and `sealingTailroom` free around it, it is sealed in its own buffer.
    public func send(_ packet: consuming ByteBuffer) {
        // Consumed: the caller's reference is gone, so sealing writes in the packet's own bytes (no copy).
        let outputs = channel.send(packet, security.environment(checkingCertificates: false),
                                   random: &security.random.generator, startsHandshake: !isSendingTogether)
        carryOut(outputs)
    }

    /// Set while `sendTogether` runs.
    private var isSendingTogether = false

    /// Sends what `body` sends on this edge as `send` would, except that a handshake it needs starts only
    /// after `body`: the init then carries all of it as first messages (a link request and the packets that
    /// follow it, a joiner's Connect-To-Me).
    func sendTogether(_ body: () -> Void) {
        isSendingTogether = true
        body()
        isSendingTogether = false
        carryOut(channel.startHandshakeForQueue(security.environment(checkingCertificates: false),
                                                random: &security.random.generator))
    }

    public func close() { inner.close() }

    /// The static key of the node this edge should lead to (from its NodeInfo): the first init then carries
    /// what waits for the handshake. Ignored once a session or handshake exists.
    func expectPeer(staticKey: [UInt8]?) {
        guard let staticKey, !channel.isEstablished, channel.queuedCount == 0 else { return }
        channel.peerStaticKey = staticKey
    }

    /// Starts a new handshake now (renewed credentials: the peer should hold the new certificate).
    func handshake() {
        carryOut(channel.handshake(security.environment(checkingCertificates: false), random: &security.random.generator))
    }

    // MARK: The edge underneath

    public func edge(_ edge: any Edge, didReceive packet: ByteBuffer) {
        guard SecureFrame.isSecureFrame(packet) else {
            // An edge message means the sender runs without security; anything shorter is just malformed.
            if packet.readableBytes >= 2 {
                refuse(.noCertificate)
            } else {
                securedDelegate?.securedEdge(self, dropped: .malformed(.truncated(field: "kind")))
            }
            return
        }
        let isSealed = packet.getInteger(at: packet.readerIndex + 1, as: UInt8.self) == SecureFrame.sealedKind
        let outputs = channel.receive(packet, security.environment(checkingCertificates: !isSealed),
                                      random: &security.random.generator, openingInto: &security.plaintext)
        carryOut(outputs)
    }

    public func edgeDidClose(_ edge: any Edge) {
        delegate?.edgeDidClose(self)
    }

    private func carryOut(_ outputs: SecureChannel.Outputs) {
        for output in outputs {
            switch output {
            case .transmit(let frame): inner.send(frame)
            case .deliver(let plaintext): delegate?.edge(self, didReceive: plaintext)
            case .established(let certificate): securedDelegate?.securedEdge(self, authenticated: certificate)
            case .refused(let refusal): logRefusal(refusal)
            case .dropped(let reason): securedDelegate?.securedEdge(self, dropped: .secureSession(reason))
            case .reachedSelf: securedDelegate?.securedEdgeReachedSelf(self)
            }
        }
    }

    // MARK: Refusals

    /// Sends the peer a `refused` frame (at most once a second) and logs why.
    func refuse(_ refusal: SecurityRefusal) {
        if record(refusal) { inner.send(SecureFrame.refused(refusal)) }
    }

    /// Counts and logs a refusal (ours or the peer's) with the edge's remote URI: a warning the first time per
    /// edge and minute, debug while it repeats.
    func logRefusal(_ refusal: SecurityRefusal) { _ = record(refusal) }

    /// Counts and logs `refusal`; returns whether a refusal frame may go out.
    private func record(_ refusal: SecurityRefusal) -> Bool {
        securedDelegate?.securedEdge(self, dropped: .refused(refusal))
        let (maySend, isRepeat) = refusals.note(at: security.scheduler.now)
        Self.log(refusal, from: remoteURI, repeated: isRepeat, to: security.logger)
        return maySend
    }

    /// Logs a refusal at the level its repetition calls for.
    static func log(_ refusal: SecurityRefusal, from uri: TransportURI, repeated: Bool, to logger: Logger) {
        let metadata: Logger.Metadata = ["peer_uri": "\(uri)", "reason": "\(refusal.reason)"]
        let text: Logger.Message = {
            if case .refusedByPeer = refusal { return "\(refusal.description)" }
            return "refusing \(uri): \(refusal.description)"
        }()
        logger.log(level: repeated ? .debug : .warning, text, metadata: metadata)
    }
}
