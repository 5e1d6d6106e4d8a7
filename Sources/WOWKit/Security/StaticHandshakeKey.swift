import Crypto
import Foundation
import NIOCore

/// What lets a handshake init carry the initiator's first messages, so that a link takes one round trip
/// (docs/security.md, "One round trip"): this node's static X25519 key, which it advertises in its NodeInfo,
/// and the latest init stamp it took first messages from, per member.
///
/// An init's first messages are sealed under a key only the holder of the peer's static key can derive
/// (X25519 of the init's ephemeral key and the static key), and they are taken only with a stamp later than
/// any taken from the same member before. The key lives as long as the process: a replay of an init from
/// before a restart cannot be opened, and one from since carries a stamp already taken. Confined to the
/// node's executor, like the edges that share it.
public final class StaticHandshakeKey {
    let privateKey: Curve25519.KeyAgreement.PrivateKey
    /// The public half, as NodeInfo carries it.
    public let publicKey: [UInt8]
    /// The latest stamp taken from each member (by its certificate's key), and the order they were noted in.
    private var latest: [[UInt8]: (stamp: UInt64, ephemeral: [UInt8])] = [:]
    private var noted: [[UInt8]] = []
    /// The last stamp this node put in one of its own inits.
    private var lastStamp: UInt64 = 0
    /// Stamps of forgotten members are at most this: a member not in `latest` must stamp later.
    private var floor: UInt64 = 0
    /// Members whose latest stamp is kept; beyond it the oldest noted is forgotten and the floor rises to its
    /// stamp (a stamp is wall-clock time, so a fresh init is later still unless its clock lags: then its first
    /// messages are refused and sent again once the handshake completes).
    static let maximumMembers = 16_384

    /// Seconds since 1970 (virtual time in the simulator): stamps follow it, so a restarted node's are later.
    var wallClock: () -> Int64

    public init(privateKey: Curve25519.KeyAgreement.PrivateKey, wallClock: @escaping () -> Int64) {
        self.privateKey = privateKey
        self.wallClock = wallClock
        publicKey = Array(privateKey.publicKey.rawRepresentation)
    }

    /// A key from 32 bytes (tests and fuzzing: a node draws its own, `EdgeSecurity`).
    public convenience init(privateKeyBytes: [UInt8], wallClock: @escaping () -> Int64) throws {
        try self.init(privateKey: Curve25519.KeyAgreement.PrivateKey(rawRepresentation: privateKeyBytes), wallClock: wallClock)
    }

    /// A stamp for a new init: microseconds of the wall clock, and always later than the last one.
    func nextStamp() -> UInt64 {
        lastStamp = max(lastStamp + 1, UInt64(max(wallClock(), 0)) * 1_000_000)
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
        guard stamp > (latest[member]?.stamp ?? floor) else { return .stale }
        if latest[member] == nil {
            if noted.count >= StaticHandshakeKey.maximumMembers, let forgotten = latest.removeValue(forKey: noted.removeFirst()) {
                floor = max(floor, forgotten.stamp)
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
