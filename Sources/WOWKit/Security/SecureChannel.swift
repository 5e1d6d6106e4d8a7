import Crypto
import Foundation
import NIOCore

/// One secure session with one peer, as a state machine: the authenticated key exchange, then AEAD sealing
/// with counter nonces and a replay window, and rekeying before a session's age or counters run out
/// (docs/security.md). A node keeps one per edge (edge security) and one per far node it sends data to (end
/// to end, over routed packets); the channel does not know which: it takes plaintext and frames in and
/// returns frames to transmit and plaintext to deliver. It does no I/O and reads no clock: the node passes
/// the time and its random generator with each event.
///
/// The handshake (SIGMA-style, two messages): the initiator sends a fresh X25519 key with its certificate,
/// signed by its identity key; the responder answers with its own fresh key and certificate, signing a
/// digest of the init too (so the initiator knows whom it reached and that the answer is for its init). Both
/// derive two directional keys by HKDF-SHA256 from the X25519 secret, salted with the digest of both
/// messages: forward secret, because the X25519 keys live only as long as the handshake. The responder
/// treats its session as confirmed once a sealed frame under it arrives (only the holder of the init's
/// X25519 key can make one), so a replayed init never replaces a working session.
public struct SecureChannel {
    /// Limits of sessions; the defaults follow WireGuard's.
    public struct Settings: Sendable, Equatable {
        /// The initiator of a session starts a new handshake once the session is this old.
        public var rekeyAfter: Duration = .seconds(120)
        /// No frame is sealed or opened under a session this old.
        public var rejectAfter: Duration = .seconds(180)
        /// A new handshake starts after this many sealed frames.
        public var rekeyAfterMessages: UInt64 = 1 << 60
        /// No frame is sealed beyond this counter.
        public var rejectAfterMessages: UInt64 = UInt64.max - (1 << 13)
        /// An unanswered init is sent again no sooner than this.
        public var handshakeRetry: Duration = .seconds(1)
        /// Plaintext held while a handshake is under way; the oldest goes first beyond it.
        public var maximumQueued = 64
        /// Ephemeral keys from the node's seeded generator instead of the system's (simulator only: a seed
        /// replays a run exactly, and the keys are predictable).
        public var deterministicKeys = false
        public init() {}
    }

    /// What the node does after an event.
    public enum Output {
        /// Send this frame to the peer (on the edge, or routed to it).
        case transmit(ByteBuffer)
        /// Authenticated plaintext from the peer.
        case deliver(ByteBuffer)
        /// A new session with the peer holding this certificate is in use (the first, or a rekey).
        case established(MembershipCertificate)
        /// A handshake was refused: by us (the node logs it; the peer was sent a `refused` frame) or by the
        /// peer (`.refusedByPeer`).
        case refused(SecurityRefusal)
        /// A frame was dropped; the reason names a counter.
        case dropped(String)
        /// Our own init came back to us: the edge leads to this very node (a URI of ours).
        case reachedSelf
    }

    /// The outputs of one event, in order. Most events have exactly one (a sealed frame to transmit, a
    /// plaintext to deliver), held inline: the data path builds no array per packet.
    public struct Outputs: RandomAccessCollection, ExpressibleByArrayLiteral {
        private var first: Output?
        private var rest: [Output] = []

        public init() {}
        public init(_ output: Output) { first = output }
        public init(arrayLiteral outputs: Output...) { for output in outputs { append(output) } }

        public var startIndex: Int { 0 }
        public var endIndex: Int { first == nil ? 0 : 1 + rest.count }
        public subscript(position: Int) -> Output {
            precondition(position >= 0 && position < endIndex, "output index out of range")
            return position == 0 ? first! : rest[position - 1]
        }

        /// Iterates without going through the generic collection machinery (whose unspecialized form, in a
        /// debug build, allocates a coroutine frame per element).
        public struct Iterator: IteratorProtocol {
            private let outputs: Outputs
            private var position = 0

            init(_ outputs: Outputs) { self.outputs = outputs }

            public mutating func next() -> Output? {
                defer { position += 1 }
                if position == 0 { return outputs.first }
                return position - 1 < outputs.rest.count ? outputs.rest[position - 1] : nil
            }
        }

        public func makeIterator() -> Iterator { Iterator(self) }

        mutating func append(_ output: Output) {
            if first == nil { first = output } else { rest.append(output) }
        }

        mutating func append(contentsOf outputs: Outputs) {
            for output in outputs { append(output) }
        }

        static func + (lhs: Outputs, rhs: Outputs) -> Outputs {
            var outputs = lhs
            outputs.append(contentsOf: rhs)
            return outputs
        }

        static func += (lhs: inout Outputs, rhs: Outputs) { lhs.append(contentsOf: rhs) }
    }

    /// What a channel needs from its node for one event.
    public struct Environment {
        /// The credentials sit behind one reference: a node makes an environment for every frame it seals or
        /// opens, and copying their many references each time cost more than sealing a small frame
        /// (`wow bench path`).
        var sharedCredentials: SharedCredentials
        public var credentials: NodeCredentials {
            get { sharedCredentials.credentials }
            set { sharedCredentials = SharedCredentials(newValue) }
        }
        public var settings: Settings
        /// The node's clock (session ages).
        public var now: Timestamp
        /// Seconds since 1970 (certificate validity).
        public var unixTime: Int64
        /// The node's static key, with which inits carry first messages (none: no init carries them, and
        /// first messages in a peer's init are not taken).
        public var staticKey: StaticHandshakeKey?

        public init(credentials: NodeCredentials, settings: Settings, now: Timestamp, unixTime: Int64,
                    staticKey: StaticHandshakeKey? = nil) {
            self.init(sharedCredentials: SharedCredentials(credentials), settings: settings, now: now, unixTime: unixTime,
                      staticKey: staticKey)
        }

        init(sharedCredentials: SharedCredentials, settings: Settings, now: Timestamp, unixTime: Int64,
             staticKey: StaticHandshakeKey?) {
            self.sharedCredentials = sharedCredentials
            self.settings = settings
            self.now = now
            self.unixTime = unixTime
            self.staticKey = staticKey
        }
    }

    struct Session {
        let localIndex: UInt32
        let remoteIndex: UInt32
        let sendKey: SessionKey
        let receiveKey: SessionKey
        var sendCounter: UInt64 = 0
        var window = ReplayWindow()
        let createdAt: Timestamp
        let isInitiator: Bool
        let peer: MembershipCertificate
    }

    private struct Initiation {
        let localIndex: UInt32
        let ephemeral: Curve25519.KeyAgreement.PrivateKey
        var frame: ByteBuffer
        var sentAt: Timestamp
        /// When the first copy went, and how many more the retransmit timer sent (`retransmit`).
        let startedAt: Timestamp
        var retransmits = 0
        /// The plaintext the init carries sealed (its first messages), until the response says whether the
        /// responder took it.
        var firstMessages: [ByteBuffer] = []
    }

    /// The cookie a busy responder gave (docs/security.md, "Cookies"), and when: inits carry its MAC while it
    /// is fresh.
    private var cookie: (value: [UInt8], receivedAt: Timestamp)?
    /// How long a cookie is used: the responder's secrets change every 2 minutes, and it takes the last two.
    static let cookieLifetime = Duration.seconds(120)

    /// The session frames are sealed under.
    private var current: Session?
    /// The session before the last rekey: frames sealed under it may still be on their way.
    private var previous: Session?
    /// A session we answered an init for, until the peer's first frame under it confirms it.
    private var next: Session?
    private var initiation: Initiation?
    private var queue: [ByteBuffer] = []
    /// The digest of the last init we answered and our response, sent again if the init comes again.
    private var lastResponse: (initDigest: [UInt8], frame: ByteBuffer)?
    private var unknownSentAt: Timestamp?

    /// For an end-to-end channel, the only address the peer may hold; nil on edges (the node checks who the
    /// peer is at the link handshake).
    public let expectedPeer: Address?
    /// The peer's static key (`StaticHandshakeKey.publicKey`, from its NodeInfo), if known: the first init
    /// then carries what is queued, sealed for it, and a link takes one round trip.
    public var peerStaticKey: [UInt8]?

    public init(expectedPeer: Address? = nil) { self.expectedPeer = expectedPeer }

    /// The authenticated peer, once a session is in use.
    public var peer: MembershipCertificate? { current?.peer }
    /// Whether frames can be sealed without waiting for a handshake.
    public var isEstablished: Bool { current != nil }
    /// The round trip of the last handshake this end started and saw answered without sending it again (a
    /// path's round trip for free, renewed with each rekey); nil until one did.
    public private(set) var handshakeRoundTrip: Duration?
    /// Plaintext waiting for a handshake (in the init's first messages too, until the response).
    public var queuedCount: Int { queue.count + (initiation?.firstMessages.count ?? 0) }
    /// Whether the init under way carries first messages: they are out, and the peer may act on them before
    /// it answers.
    public var initCarriesFirstMessages: Bool { !(initiation?.firstMessages.isEmpty ?? true) }

    /// Whether the channel holds nothing worth keeping at `now`: no usable session, no handshake under way
    /// and nothing queued (the node then forgets it).
    public func isIdle(at now: Timestamp, settings: Settings) -> Bool {
        let live = [current, next].contains { $0.map { now - $0.createdAt < settings.rejectAfter } ?? false }
        let handshaking = initiation.map { now - $0.startedAt < settings.rejectAfter } ?? false
        return !live && !handshaking && queue.isEmpty
    }

    // MARK: - Sending

    /// Bytes to leave free before a plaintext's readable bytes (`sealingHeadroom`) and after them
    /// (`sealingTailroom`) so that `send` seals it in its own buffer, which then is the frame: no allocation
    /// and no copy. A plaintext without them is copied into a new frame buffer.
    public static let sealingHeadroom = SecureFrame.sealedHeaderSize
    public static let sealingTailroom = SecureFrame.tagSize

    /// Seals `plaintext` for the peer, or holds it and starts (or repeats) a handshake. The channel takes the
    /// buffer: with `sealingHeadroom` and `sealingTailroom` free around its bytes and no other reference to
    /// its storage, it is sealed in place and transmitted as it is.
    /// `startsHandshake` false: what must wait for a handshake only waits (`startHandshakeForQueue` starts it,
    /// so that one init carries several messages).
    public mutating func send(_ plaintext: consuming ByteBuffer, _ env: Environment,
                              random: inout SeededRandom, startsHandshake: Bool = true) -> Outputs {
        if current.map({ isUsable($0, env) }) == true {
            var outputs = Outputs(.transmit(SecureChannel.seal(consume plaintext, under: &current!)))
            if initiation == nil, !awaitsConfirmation(env), shouldRekey(current!, env) { outputs += initiate(env, random: &random) }
            return outputs
        }
        if current == nil, next.map({ isUsable($0, env) }) == true {
            // We answered the peer's init and have nothing older: its keys are the only ones it can read.
            return Outputs(.transmit(SecureChannel.seal(consume plaintext, under: &next!)))
        }
        var outputs = Outputs()
        if queue.count >= env.settings.maximumQueued {
            queue.removeFirst()
            outputs.append(.dropped("handshake_queue_full"))
        }
        queue.append(plaintext)
        return startsHandshake ? outputs + initiate(env, random: &random) : outputs
    }

    /// Starts the handshake that what waits in the queue needs, as `send` would have (nothing waits unless no
    /// session was usable); an init under way is sent again only when due.
    public mutating func startHandshakeForQueue(_ env: Environment, random: inout SeededRandom) -> Outputs {
        guard !queue.isEmpty else { return [] }
        return initiate(env, random: &random)
    }

    /// Starts a handshake now unless one is under way (a rekey the node asks for, or the first).
    public mutating func handshake(_ env: Environment, random: inout SeededRandom) -> Outputs {
        initiate(env, random: &random)
    }

    /// When an unanswered init with plaintext waiting behind it is due again (`retransmit`); nil when none
    /// waits. Nothing else repeats it: without this, plaintext held for a handshake whose init or response was
    /// lost would wait for the next `send`, or for ever.
    public func retransmitDue(_ settings: Settings) -> Timestamp? {
        guard let pending = initiation, queuedCount > 0 else { return nil }
        // handshake_retry, then twice as long each time up to 8 times as long (1, 2, 4, 8, 8, ... s).
        return pending.sentAt + settings.handshakeRetry * (1 << min(pending.retransmits, 3))
    }

    /// Sends the unanswered init again once `retransmitDue`; gives up once it has gone unanswered for
    /// `rejectAfter`: the plaintext waiting for it is dropped (`handshake_timeout`, one each).
    public mutating func retransmit(_ env: Environment) -> Outputs {
        guard let due = retransmitDue(env.settings), env.now >= due, let pending = initiation else { return [] }
        guard env.now - pending.startedAt < env.settings.rejectAfter else {
            var outputs = Outputs()
            for _ in 0..<queuedCount { outputs.append(.dropped("handshake_timeout")) }
            initiation = nil
            queue.removeAll()
            return outputs
        }
        return sendInitAgain(at: env.now, countingTowardBackoff: true)
    }

    /// Sends the unanswered init (with plaintext waiting behind it) again now, ahead of `retransmitDue`, if it
    /// went out at least `wait` ago: our own place in the ring changed (a joiner's first links came up), so a
    /// response that found no way back to us before may find one now. Does not count toward the backoff.
    public mutating func resendInit(_ env: Environment, ifUnansweredFor wait: Duration) -> Outputs {
        guard let pending = initiation, queuedCount > 0, env.now - pending.sentAt >= wait,
              env.now - pending.startedAt < env.settings.rejectAfter else { return [] }
        return sendInitAgain(at: env.now)
    }

    /// The unanswered init once more, sent at `now` (the retry timers run from there).
    private mutating func sendInitAgain(at now: Timestamp, countingTowardBackoff: Bool = false) -> Outputs {
        guard var pending = initiation else { return [] }
        pending.sentAt = now
        if countingTowardBackoff { pending.retransmits += 1 }
        initiation = pending
        return [.transmit(pending.frame)]
    }

    /// The peer is not in the ring (a router answered our init with `absentDestination`): a first handshake
    /// stops, and what waited for it is dropped (`handshake_unreachable`, one each), as plaintext sent there
    /// would have been. A rekey of a working session goes on.
    public mutating func peerUnreachable() -> Outputs {
        guard initiation != nil, current == nil, next == nil else { return [] }
        var outputs = Outputs()
        for _ in 0..<queuedCount { outputs.append(.dropped("handshake_unreachable")) }
        initiation = nil
        queue.removeAll()
        return outputs
    }

    private func isUsable(_ session: Session, _ env: Environment) -> Bool {
        env.now - session.createdAt < env.settings.rejectAfter && session.sendCounter < env.settings.rejectAfterMessages
    }

    /// Whether we answered the peer's init a moment ago (its rekey, or the init that won when both ends
    /// rekeyed at once) and wait for its first frame under that session. A rekey of ours now would replace the
    /// session the peer is about to seal under: its frames would reach us under a session we no longer hold.
    private func awaitsConfirmation(_ env: Environment) -> Bool {
        next.map { env.now - $0.createdAt < env.settings.handshakeRetry } ?? false
    }

    private func shouldRekey(_ session: Session, _ env: Environment) -> Bool {
        // The initiator rekeys; the responder only if the initiator has not, well before the session dies.
        // The responder's limit is halfway between rekeyAfter and rejectAfter (compared doubled, and doubled by
        // adding: a Duration division or product is 128-bit and checked, and this runs for every frame sealed).
        let age = env.now - session.createdAt
        let isDue = session.isInitiator ? age >= env.settings.rekeyAfter
            : age + age >= env.settings.rekeyAfter + env.settings.rejectAfter
        return isDue || session.sendCounter >= env.settings.rekeyAfterMessages
    }

    private mutating func initiate(_ env: Environment, random: inout SeededRandom) -> Outputs {
        if let pending = initiation {
            guard env.now - pending.sentAt >= env.settings.handshakeRetry else { return [] }
            return sendInitAgain(at: env.now)
        }
        let ephemeral = SecureChannel.makeEphemeral(env.settings, random: &random)
        let index = UInt32(truncatingIfNeeded: random.next())
        let identity = env.credentials.identity
        // The first handshake with a peer whose static key we know carries what waits for it.
        var firstMessages: [ByteBuffer] = []
        var seal: (([UInt8]) -> [UInt8]?)?
        var stamp: UInt64 = 0
        if current == nil, next == nil, !queue.isEmpty, let peerKey = peerStaticKey, let own = env.staticKey {
            let queued = queue
            let messages = queued.map(\.readableBytesView)
            stamp = own.nextStamp()
            seal = { header in
                // Sealed into the init only if they fit (else they wait for the handshake, as without a key).
                guard let sealed = StaticHandshakeKey.seal(messages, ephemeral: ephemeral, responderKey: peerKey, header: header),
                      sealed.count <= HandshakeMessage.maximumFirstMessages else { return nil }
                firstMessages = queued
                return sealed
            }
        }
        var frame = HandshakeMessage.make(kind: SecureFrame.initKind, senderIndex: index, receiverIndex: nil,
                                          ephemeral: Array(ephemeral.publicKey.rawRepresentation),
                                          certificate: env.credentials.certificate.encoded,
                                          label: SecureChannel.initLabel, prefix: [],
                                          admission: env.credentials.admissionKey, firstMessages: seal, stamp: stamp,
                                          sign: identity.sign)
        if let cookie, env.now - cookie.receivedAt < SecureChannel.cookieLifetime {
            frame = AdmissionKey.withCookie(frame, cookie: cookie.value)
        }
        if !firstMessages.isEmpty { queue.removeAll() }
        initiation = Initiation(localIndex: index, ephemeral: ephemeral, frame: frame, sentAt: env.now, startedAt: env.now,
                                firstMessages: firstMessages)
        return [.transmit(frame)]
    }

    static func makeEphemeral(_ settings: Settings, random: inout SeededRandom) -> Curve25519.KeyAgreement.PrivateKey {
        guard settings.deterministicKeys else { return Curve25519.KeyAgreement.PrivateKey() }
        var seed: [UInt8] = []
        for _ in 0..<4 { withUnsafeBytes(of: random.next()) { seed += $0 } }
        // 32 bytes are always a valid X25519 private key.
        return try! Curve25519.KeyAgreement.PrivateKey(rawRepresentation: seed)
    }

    /// The sealed frame of `plaintext`: the header goes into the headroom in front of it and the ciphertext
    /// over it, in its own buffer when it has the room (else in a new one).
    private static func seal(_ plaintext: consuming ByteBuffer, under session: inout Session) -> ByteBuffer {
        let counter = session.sendCounter
        session.sendCounter += 1
        let headerSize = SecureFrame.sealedHeaderSize
        var frame: ByteBuffer
        if plaintext.readerIndex >= headerSize {
            // Consumed, so that the frame holds the storage alone when the caller gave it up.
            frame = consume plaintext
            frame.moveReaderIndex(to: frame.readerIndex - headerSize)
        } else {
            frame = ByteBufferAllocator().buffer(capacity: SecureFrame.sealedOverhead + plaintext.readableBytes)
            frame.moveWriterIndex(forwardBy: headerSize)
            frame.writeImmutableBuffer(plaintext)
        }
        let remoteIndex = session.remoteIndex
        // The header in one access: each ByteBuffer write costs its own checks, and this runs for every frame.
        frame.withUnsafeMutableReadableBytes { raw in
            raw[0] = WireFormat.version
            raw[1] = SecureFrame.sealedKind
            raw.storeBytes(of: remoteIndex.bigEndian, toByteOffset: 2, as: UInt32.self)
            raw.storeBytes(of: counter.bigEndian, toByteOffset: 6, as: UInt64.self)
        }
        session.sendKey.seal(&frame, headerLength: headerSize, counter: counter)
        return frame
    }

    // MARK: - Receiving

    /// Handles one secure frame from the peer. A sealed frame's plaintext is written into a new buffer.
    public mutating func receive(_ frame: ByteBuffer, _ env: Environment, random: inout SeededRandom) -> Outputs {
        var plaintext = ByteBuffer()
        return receive(frame, env, random: &random, openingInto: &plaintext)
    }

    /// Handles one secure frame from the peer, writing a sealed frame's plaintext into `plaintext`'s storage
    /// (cleared first; delivered as `.deliver(plaintext)`). A caller that keeps one buffer for this and lets
    /// go of each delivered plaintext before the next frame opens every frame without allocating; a
    /// plaintext still held elsewhere just makes the next open write into a new buffer.
    public mutating func receive(_ frame: ByteBuffer, _ env: Environment, random: inout SeededRandom,
                                 openingInto plaintext: inout ByteBuffer) -> Outputs {
        guard frame.readableBytes >= 2, let kind = frame.getInteger(at: frame.readerIndex + 1, as: UInt8.self) else {
            return [.dropped("truncated")]
        }
        do {
            switch kind {
            case SecureFrame.sealedKind: return try receiveSealed(frame, env, openingInto: &plaintext)
            case SecureFrame.initKind: return try receiveInit(frame, env, random: &random)
            case SecureFrame.responseKind: return try receiveResponse(frame, env)
            case SecureFrame.refusedKind:
                return [.refused(try SecureFrame.refusal(in: frame))]
            case SecureFrame.cookieKind:
                // A busy responder wants our init again, with its cookie's MAC: unauthenticated, so it costs
                // one init at most per cookie (a forged one only makes the responder answer with a new cookie).
                let (index, value) = try SecureFrame.cookie(in: frame)
                guard var pending = initiation, pending.localIndex == index, cookie?.value != value else {
                    return [.dropped("stray_cookie")]
                }
                cookie = (value, env.now)
                pending.frame = AdmissionKey.withCookie(pending.frame, cookie: value)
                pending.sentAt = env.now
                initiation = pending
                return [.transmit(pending.frame)]
            case SecureFrame.unknownSessionKind:
                var reader = try SecureFrame.reader(frame, kind: kind)
                let index = try reader.u32("receiver_index")
                try reader.expectEnd()
                // The peer lost the session we seal under (it restarted): handshake again. Unauthenticated, so
                // it costs a handshake at most once per retry interval and the old session stays until then.
                // A session we answered within that interval means the peer is handshaking already; an older
                // unconfirmed one (a replayed or late init) must not block the recovery.
                // (A session put in use at once for an init's first messages was answered as recently.)
                let answered = [next, current.flatMap { $0.isInitiator ? nil : $0 }]
                let answeredRecently = answered.contains { $0.map { env.now - $0.createdAt < env.settings.handshakeRetry } ?? false }
                // Without a session in use we seal under the one we answered (`send`), and its initiator may have
                // lost its handshake before our response came (its edge closed and a new one opened): it never
                // confirms, so unless we handshake, both ends wait on each other for ever (two crossing inits, each
                // answered by a channel the other had already dropped, did exactly that). What we send waits for
                // our handshake instead.
                let sealing = current ?? next
                guard let sealing, index == sealing.remoteIndex, !answeredRecently else {
                    return [.dropped("stale_unknown_session")]
                }
                if current == nil { next = nil }
                return initiate(env, random: &random)
            default:
                return [.dropped("unknown_kind")]
            }
        } catch {
            return [.dropped(error.reason)]
        }
    }

    private mutating func receiveSealed(_ frame: ByteBuffer, _ env: Environment,
                                        openingInto plaintext: inout ByteBuffer) throws(WireError) -> Outputs {
        guard frame.readableBytes >= SecureFrame.sealedHeaderSize + SecureFrame.tagSize else {
            // Short: field by field, so that the error names the first field missing.
            var reader = try SecureFrame.reader(frame, kind: SecureFrame.sealedKind)
            _ = try reader.u32("receiver_index")
            _ = try reader.u64("counter")
            throw .truncated(field: "tag")
        }
        // The header in one access (see `seal`); the kind is sealed, or this would not have been called.
        let (version, index, counter) = frame.withUnsafeReadableBytes { raw in
            (raw[0], UInt32(bigEndian: raw.loadUnaligned(fromByteOffset: 2, as: UInt32.self)),
             UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 6, as: UInt64.self)))
        }
        guard version == WireFormat.version else { throw .badVersion(version) }
        enum Slot { case current, next, previous }
        let slot: Slot
        if current?.localIndex == index { slot = .current }
        else if next?.localIndex == index { slot = .next }
        else if previous?.localIndex == index { slot = .previous }
        else {
            if let sent = unknownSentAt, env.now - sent < env.settings.handshakeRetry { return [.dropped("unknown_session")] }
            unknownSentAt = env.now
            return [.transmit(SecureFrame.unknownSession(index)), .dropped("unknown_session")]
        }
        // The session is only read until the window is committed, in place: no copy of it (and of its bitmap)
        // may still be alive then.
        let refusal: String?
        switch slot {
        case .current: refusal = SecureChannel.open(frame, counter: counter, under: current!, env, into: &plaintext)
        case .next: refusal = SecureChannel.open(frame, counter: counter, under: next!, env, into: &plaintext)
        case .previous: refusal = SecureChannel.open(frame, counter: counter, under: previous!, env, into: &plaintext)
        }
        if let refusal { return Outputs(.dropped(refusal)) }
        // An empty frame only confirms a session (`receiveResponse`): nothing to deliver.
        if slot == .current {
            current!.window.commit(counter)
            return plaintext.readableBytes == 0 ? Outputs() : Outputs(.deliver(plaintext))
        }
        var outputs = Outputs()
        switch slot {
        case .current: break
        case .previous: previous!.window.commit(counter)
        case .next:
            // Confirmed: the peer holds the init's key. Frames under the old session may still arrive.
            next!.window.commit(counter)
            previous = current
            current = next
            next = nil
            outputs.append(.established(current!.peer))
            outputs += flushQueue()
        }
        if plaintext.readableBytes > 0 { outputs.append(.deliver(plaintext)) }
        return outputs
    }

    /// Opens sealed frame `counter` under `session` into `plaintext`; the drop reason if it may not be opened.
    private static func open(_ frame: ByteBuffer, counter: UInt64, under session: Session, _ env: Environment,
                             into plaintext: inout ByteBuffer) -> String? {
        guard env.now - session.createdAt < env.settings.rejectAfter else { return "session_expired" }
        switch session.window.verdict(for: counter) {
        case .fresh: break
        case .replayed: return "replayed"
        case .tooOld: return "outside_replay_window"
        }
        guard session.receiveKey.open(frame, headerLength: SecureFrame.sealedHeaderSize, counter: counter,
                                      into: &plaintext) else { return "bad_tag" }
        return nil
    }

    private mutating func receiveInit(_ frame: ByteBuffer, _ env: Environment,
                                      random: inout SeededRandom) throws(WireError) -> Outputs {
        let digest = Array(SHA256.hash(data: Array(frame.readableBytesView)))
        if let last = lastResponse, last.initDigest == digest {
            // Our response was lost: the same init came again.
            return [.transmit(last.frame)]
        }
        // Before anything costly: an init without this network's admission MAC is refused for what its
        // certificate says, and no signature is checked.
        guard env.credentials.admissionKey.isValid(frame) else {
            let refusal = SecureFrame.admissionRefusal(of: frame, env.credentials)
            return [.transmit(SecureFrame.refused(refusal)), .refused(refusal)]
        }
        let message = try HandshakeMessage.decode(frame, kind: SecureFrame.initKind)
        if let ours = initiation, message.ephemeral == Array(ours.ephemeral.publicKey.rawRepresentation) {
            return [.reachedSelf]
        }
        let certificate: MembershipCertificate
        switch verify(message, label: SecureChannel.initLabel, prefix: [], env) {
        case .success(let verified): certificate = verified
        case .failure(let refusal): return [.transmit(SecureFrame.refused(refusal)), .refused(refusal)]
        }
        if let ours = initiation, current == nil || env.now - ours.sentAt < env.settings.handshakeRetry,
           SecureChannel.oursGoesOn(ours, against: message) {
            // Both ends started at once: one init goes on, so exactly one completes. The peer answers ours; send
            // it again in case it was lost.
            return [.transmit(ours.frame)]
        }
        let ephemeral = SecureChannel.makeEphemeral(env.settings, random: &random)
        guard let theirs = try? Curve25519.KeyAgreement.PublicKey(rawRepresentation: message.ephemeral),
              let shared = try? ephemeral.sharedSecretFromKeyAgreement(with: theirs) else {
            return [.dropped("bad_ephemeral")]
        }
        // First messages sealed for our static key, stamped later than any taken from this member before: the
        // init is fresh (not a replay), so its session is in use at once and the messages are delivered now.
        var firstMessages: [[UInt8]]?
        var tookEarlier = false
        if let sealed = message.firstMessages, let own = env.staticKey,
           let opened = own.open(sealed.sealed, ephemeral: message.ephemeral, header: sealed.header) {
            switch own.take(stamp: sealed.stamp, ephemeral: message.ephemeral, from: certificate.publicKey) {
            case .fresh: firstMessages = opened
            // The same init again with another cookie MAC (so another digest): its messages were delivered;
            // the initiator must not send them again, and nothing is delivered twice.
            case .takenBefore: tookEarlier = true
            case .stale: break
            }
        }
        let index = UInt32(truncatingIfNeeded: random.next())
        let response = HandshakeMessage.make(kind: SecureFrame.responseKind, senderIndex: index,
                                             receiverIndex: message.senderIndex,
                                             ephemeral: Array(ephemeral.publicKey.rawRepresentation),
                                             certificate: env.credentials.certificate.encoded,
                                             label: SecureChannel.responseLabel, prefix: digest,
                                             took: firstMessages != nil || tookEarlier, sign: env.credentials.identity.sign)
        let (initiatorKey, responderKey) = SecureChannel.keys(shared, initFrame: frame, responseFrame: response)
        let session = Session(localIndex: index, remoteIndex: message.senderIndex, sendKey: SessionKey(responderKey),
                              receiveKey: SessionKey(initiatorKey), createdAt: env.now, isInitiator: false, peer: certificate)
        // Ours lost the tie (or is moot now): the peer's handshake carries the queue.
        abandonInitiation()
        lastResponse = (digest, response)
        var outputs = Outputs(.transmit(response))
        if let firstMessages {
            previous = current
            current = session
            next = nil
            outputs.append(.established(certificate))
            for message in firstMessages { outputs.append(.deliver(ByteBuffer(bytes: message))) }
            return outputs + flushQueue()
        }
        next = session
        // Counted: a stale static key in NodeInfos, a lagging clock or a replay costs a round trip.
        if message.firstMessages != nil, !tookEarlier { outputs.append(.dropped("first_messages_not_taken")) }
        if current == nil { outputs += flushQueue() }
        return outputs
    }

    private mutating func receiveResponse(_ frame: ByteBuffer, _ env: Environment) throws(WireError) -> Outputs {
        let message = try HandshakeMessage.decode(frame, kind: SecureFrame.responseKind)
        guard let ours = initiation, message.receiverIndex == ours.localIndex else {
            return [.dropped("stray_handshake_response")]
        }
        let initDigest = Array(SHA256.hash(data: Array(ours.frame.readableBytesView)))
        let certificate: MembershipCertificate
        switch verify(message, label: SecureChannel.responseLabel, prefix: initDigest, env) {
        case .success(let verified): certificate = verified
        // Tell the responder too (as `.refused` promises), or its operator never learns why no session forms.
        case .failure(let refusal): return [.transmit(SecureFrame.refused(refusal)), .refused(refusal)]
        }
        guard let theirs = try? Curve25519.KeyAgreement.PublicKey(rawRepresentation: message.ephemeral),
              let shared = try? ours.ephemeral.sharedSecretFromKeyAgreement(with: theirs) else {
            return [.dropped("bad_ephemeral")]
        }
        let (initiatorKey, responderKey) = SecureChannel.keys(shared, initFrame: ours.frame, responseFrame: frame)
        // First messages the responder did not take (its static key changed, or the stamp was not later than
        // one it took) go now, sealed, ahead of what was queued since.
        if !message.tookFirstMessages { queue = ours.firstMessages + queue }
        previous = current
        current = Session(localIndex: ours.localIndex, remoteIndex: message.senderIndex,
                          sendKey: SessionKey(initiatorKey), receiveKey: SessionKey(responderKey), createdAt: env.now, isInitiator: true, peer: certificate)
        next = nil
        if ours.retransmits == 0 { handshakeRoundTrip = env.now - ours.sentAt }
        initiation = nil
        var outputs = Outputs(.established(certificate)) + flushQueue()
        if !message.tookFirstMessages,
           !outputs.contains(where: { if case .transmit = $0 { return true } else { return false } }) {
            // Nothing queued (a rekey a send started: that send went under the old session). The peer holds
            // the new session as unconfirmed until a frame comes under it, and a rekey of its own meanwhile
            // would drop it; so confirm at once with an empty frame, as WireGuard's keepalive does. (A peer
            // that took first messages uses the session already.)
            outputs.append(.transmit(SecureChannel.seal(ByteBuffer(), under: &current!)))
        }
        return outputs
    }

    /// Checks the certificate in a handshake message against the network, and its signature.
    private func verify(_ message: HandshakeMessage, label: [UInt8], prefix: [UInt8],
                        _ env: Environment) -> Result<MembershipCertificate, SecurityRefusal> {
        let certificate: MembershipCertificate
        do {
            certificate = try MembershipCertificate.decode(message.certificate)
        } catch {
            return .failure(.malformedCertificate(error.description))
        }
        if let refusal = env.credentials.check(certificate, at: env.unixTime) { return .failure(refusal) }
        guard let key = try? Curve25519.Signing.PublicKey(rawRepresentation: certificate.publicKey),
              key.isValidSignature(message.signature, for: label + prefix + message.signedPart) else {
            return .failure(.badHandshakeSignature(name: certificate.name))
        }
        if let expectedPeer, certificate.entitledAddress != expectedPeer {
            return .failure(.unexpectedPeer(name: certificate.name, expected: expectedPeer, got: certificate.entitledAddress))
        }
        return .success(certificate)
    }

    /// Which of two crossing inits goes on (the same answer at both ends): one that carries first messages over
    /// one that does not (its messages may have been taken already: sending them again after answering the
    /// other could deliver them twice), else the one with the larger key.
    private static func oursGoesOn(_ ours: Initiation, against theirs: HandshakeMessage) -> Bool {
        let oursCarries = !ours.firstMessages.isEmpty, theirsCarries = theirs.firstMessages != nil
        if oursCarries != theirsCarries { return oursCarries }
        return !Array(ours.ephemeral.publicKey.rawRepresentation).lexicographicallyPrecedes(theirs.ephemeral)
    }

    /// Drops our handshake under way; the first messages its init carried wait for the next one.
    private mutating func abandonInitiation() {
        if let ours = initiation { queue = ours.firstMessages + queue }
        initiation = nil
    }

    private mutating func flushQueue() -> Outputs {
        let pending = queue
        queue.removeAll()
        var outputs = Outputs()
        for plaintext in pending {
            if current != nil { outputs.append(.transmit(SecureChannel.seal(plaintext, under: &current!))) }
            else if next != nil { outputs.append(.transmit(SecureChannel.seal(plaintext, under: &next!))) }
        }
        return outputs
    }

    /// The two directional keys: HKDF-SHA256 of the X25519 secret, salted with the digest of both messages.
    static func keys(_ shared: SharedSecret, initFrame: ByteBuffer,
                     responseFrame: ByteBuffer) -> (initiator: SymmetricKey, responder: SymmetricKey) {
        let salt = SHA256.hash(data: Array(initFrame.readableBytesView) + Array(responseFrame.readableBytesView))
        let material = shared.hkdfDerivedSymmetricKey(using: SHA256.self, salt: Array(salt), sharedInfo: keysLabel,
                                                      outputByteCount: 64)
        return material.withUnsafeBytes { bytes in
            (SymmetricKey(data: bytes.prefix(32)), SymmetricKey(data: bytes.suffix(32)))
        }
    }

    static let initLabel = Array("wow/init/1".utf8)
    static let responseLabel = Array("wow/response/1".utf8)
    static let keysLabel = Array("wow/keys/1".utf8)
}
