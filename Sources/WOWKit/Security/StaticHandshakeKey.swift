import Crypto
import Foundation
import NIOCore

/// What lets a handshake init carry the initiator's first messages, so that a link takes one round trip
/// (docs/security.md, "One round trip"): this node's static X25519 key, which it advertises in its NodeInfo,
/// and the latest init stamp it took first messages from, per member.
///
/// An init's first messages are sealed under a key only the holder of the peer's static key can derive
/// (X25519 of the init's ephemeral key and the static key), and they are taken only with a stamp later than
/// any taken from the same member before, and later than this key's start (the wall clock when it was made).
/// The key is derived from the node's identity, so it outlives a restart (a bootstrap list may name it): a
/// replay of an init from before the restart carries a stamp from before the start, and one from since a
/// stamp already taken. Confined to the node's executor, like the edges that share it.
public final class StaticHandshakeKey {
    let privateKey: Curve25519.KeyAgreement.PrivateKey
    /// The public half, as NodeInfo carries it.
    public let publicKey: [UInt8]
    /// The latest stamp taken from each member (by its certificate's key), and the order they were noted in.
    private var latest: [[UInt8]: (stamp: UInt64, ephemeral: [UInt8])] = [:]
    private var noted: [[UInt8]] = []
    /// The last stamp this node put in one of its own inits.
    private var lastStamp: UInt64 = 0
    /// The earliest stamp taken from a member not in `latest`: the key's start (the clock when it was made or
    /// set), raised past the stamps of forgotten members.
    private var floor: UInt64 = 0
    /// Members whose latest stamp is kept; beyond it the oldest noted is forgotten and the floor rises to its
    /// stamp (a stamp is wall-clock time, so a fresh init is later still unless its clock lags: then its first
    /// messages are refused and sent again once the handshake completes).
    static let maximumMembers = 16_384

    /// Microseconds since 1970 (virtual time in the simulator): stamps follow it, so a restarted node's are
    /// later. Setting it starts the key anew: nothing stamped before then is taken (a replay from before a restart).
    var clock: () -> UInt64 {
        didSet { floor = clock() }
    }

    public init(privateKey: Curve25519.KeyAgreement.PrivateKey, clock: @escaping () -> UInt64) {
        self.privateKey = privateKey
        self.clock = clock
        publicKey = Array(privateKey.publicKey.rawRepresentation)
        floor = clock()
    }

    /// The node's key: HKDF-SHA256 of its identity's private key, labelled (so it is the same after a restart).
    public convenience init(identity: NodeIdentity, clock: @escaping () -> UInt64) {
        self.init(privateKey: Self.privateKey(for: identity), clock: clock)
    }

    /// The static private key of `identity` (`init(identity:clock:)`).
    static func privateKey(for identity: NodeIdentity) -> Curve25519.KeyAgreement.PrivateKey {
        let derived = HKDF<SHA256>.deriveKey(inputKeyMaterial: SymmetricKey(data: identity.encoded),
                                             info: Self.derivationLabel, outputByteCount: 32)
        // Any 32 bytes are an X25519 private key.
        return try! Curve25519.KeyAgreement.PrivateKey(rawRepresentation: derived.withUnsafeBytes { Array($0) })
    }

    /// The public static key of `identity`: what its NodeInfo advertises and a bootstrap list may name
    /// (`wow keygen` prints it).
    public static func publicKey(for identity: NodeIdentity) -> [UInt8] {
        Array(privateKey(for: identity).publicKey.rawRepresentation)
    }

    static let derivationLabel = Array("wow/static-handshake-key/1".utf8)

    /// A key from 32 bytes (tests and fuzzing: a node derives its own from its identity, `EdgeSecurity`).
    public convenience init(privateKeyBytes: [UInt8], clock: @escaping () -> UInt64) throws {
        try self.init(privateKey: Curve25519.KeyAgreement.PrivateKey(rawRepresentation: privateKeyBytes), clock: clock)
    }

    /// A stamp for a new init: the clock's microseconds, and always later than the last one.
    func nextStamp() -> UInt64 {
        lastStamp = max(lastStamp + 1, clock())
        return lastStamp
    }

    /// What a stamp is worth (`take`).
    enum Verdict: Equatable {
        /// Later than any taken from the member: take the messages.
        case fresh
        /// The very init whose messages were taken last (sent again, with another cookie MAC).
        case takenBefore
        /// Not later: a replay, or a clock that stepped back.
        case stale
    }

    /// Whether first messages stamped `stamp` in an init with `ephemeral` from the member with certificate key
    /// `member` may be taken: only if later than every stamp taken from it before. Notes it if so.
    func take(stamp: UInt64, ephemeral: [UInt8], from member: [UInt8]) -> Verdict {
        if let last = latest[member], last.stamp == stamp, last.ephemeral == ephemeral { return .takenBefore }
        guard stamp >= latest[member].map({ $0.stamp + 1 }) ?? floor else { return .stale }
        if latest[member] == nil {
            if noted.count >= StaticHandshakeKey.maximumMembers, let forgotten = latest.removeValue(forKey: noted.removeFirst()) {
                floor = max(floor, forgotten.stamp + 1)
            }
            noted.append(member)
        }
        latest[member] = (stamp, ephemeral)
        return .fresh
    }

    /// The key an init's first messages are sealed under: HKDF-SHA256 of X25519(`secret`, `peer`), salted
    /// with the init's ephemeral key and the responder's static key.
    static func sealingKey(_ shared: SharedSecret, ephemeral: [UInt8], responderKey: [UInt8]) -> SymmetricKey {
        shared.hkdfDerivedSymmetricKey(using: SHA256.self, salt: ephemeral + responderKey, sharedInfo: label,
                                       outputByteCount: 32)
    }

    static let label = Array("wow/first-messages/1".utf8)
    /// Every key seals one plaintext (the ephemeral key is fresh per init): a fixed nonce is safe.
    static let nonce = try! AES.GCM.Nonce(data: [UInt8](repeating: 0, count: 12))

    /// Seals `messages` (each u16-length-prefixed) for the holder of `responderKey`, with `header` (every init
    /// byte before the sealed part) authenticated too.
    static func seal(_ messages: [ByteBufferView], ephemeral: Curve25519.KeyAgreement.PrivateKey,
                     responderKey: [UInt8], header: [UInt8]) -> [UInt8]? {
        guard let peer = try? Curve25519.KeyAgreement.PublicKey(rawRepresentation: responderKey),
              let shared = try? ephemeral.sharedSecretFromKeyAgreement(with: peer) else { return nil }
        var plaintext: [UInt8] = []
        for message in messages {
            plaintext.append(UInt8(message.count >> 8))
            plaintext.append(UInt8(message.count & 0xFF))
            plaintext += message
        }
        let key = sealingKey(shared, ephemeral: Array(ephemeral.publicKey.rawRepresentation), responderKey: responderKey)
        guard let box = try? AES.GCM.seal(plaintext, using: key, nonce: nonce, authenticating: header) else { return nil }
        return Array(box.ciphertext) + Array(box.tag)
    }

    /// Opens first messages sealed for this node; nil if they were not (another key: this node restarted, or
    /// the initiator's NodeInfo of it was stale) or are malformed.
    func open(_ sealed: [UInt8], ephemeral: [UInt8], header: [UInt8]) -> [[UInt8]]? {
        guard sealed.count >= 16, let peer = try? Curve25519.KeyAgreement.PublicKey(rawRepresentation: ephemeral),
              let shared = try? privateKey.sharedSecretFromKeyAgreement(with: peer) else { return nil }
        let key = StaticHandshakeKey.sealingKey(shared, ephemeral: ephemeral, responderKey: publicKey)
        guard let box = try? AES.GCM.SealedBox(nonce: StaticHandshakeKey.nonce, ciphertext: sealed.dropLast(16),
                                               tag: sealed.suffix(16)),
              let plaintext = try? AES.GCM.open(box, using: key, authenticating: header) else { return nil }
        var messages: [[UInt8]] = []
        var index = plaintext.startIndex
        while index < plaintext.endIndex {
            guard plaintext.endIndex - index >= 2 else { return nil }
            let length = Int(plaintext[index]) << 8 | Int(plaintext[index + 1])
            index += 2
            guard plaintext.endIndex - index >= length else { return nil }
            messages.append(Array(plaintext[index..<index + length]))
            index += length
        }
        return messages
    }
}
