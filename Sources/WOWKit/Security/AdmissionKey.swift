import Crypto
import NIOCore

/// The key of the admission MAC every handshake init carries (docs/security.md, "Admission"): derived from the
/// network authority's public key, which every member holds (its `ca.crt`) and no packet carries, so a node
/// tells an init from a member of its network from anything else with one HMAC, before it keeps any state
/// or checks any signature. Like WireGuard's `mac1`, it is not a secret against members: it only makes
/// outsiders' packets cheap to drop.
public struct AdmissionKey: Sendable {
    /// Bytes of each MAC at the end of an init: the admission MAC, then the cookie MAC (zero without a cookie).
    public static let macSize = 16
    /// Bytes both take.
    public static let trailerSize = 2 * macSize
    static let label = Array("wow/admission/1".utf8)

    /// HMAC-SHA256's key blocks (RFC 2104: the key, zero-padded to SHA-256's 64-byte block, XORed with 0x36 and
    /// with 0x5c), made once, so that a MAC costs two SHA-256 runs and no key setup: swift-crypto's `HMAC(key:)`
    /// per datagram was a fifth of a node's CPU under a flood of init-like datagrams.
    private let innerBlock: [UInt8]
    private let outerBlock: [UInt8]

    public init(authority: NetworkAuthority) {
        let key = Array(SHA256.hash(data: AdmissionKey.label + authority.publicKey))
        let padded = key + [UInt8](repeating: 0, count: SHA256.blockByteCount - key.count)
        innerBlock = padded.map { $0 ^ 0x36 }
        outerBlock = padded.map { $0 ^ 0x5C }
    }

    /// HMAC-SHA256 of `bytes` under the admission key. Fresh digests each time: a copied `SHA256` or `HMAC` value
    /// shares its state on Linux (swift-crypto's BoringSSL context), which crashed a node.
    func code(_ bytes: UnsafeRawBufferPointer) -> SHA256.Digest {
        var inner = SHA256()
        innerBlock.withUnsafeBytes { inner.update(bufferPointer: $0) }
        inner.update(bufferPointer: bytes)
        let innerDigest = inner.finalize()
        var outer = SHA256()
        outerBlock.withUnsafeBytes { outer.update(bufferPointer: $0) }
        innerDigest.withUnsafeBytes { outer.update(bufferPointer: $0) }
        return outer.finalize()
    }

    /// The MAC of `bytes`.
    public func mac(_ bytes: UnsafeRawBufferPointer) -> [UInt8] {
        Array(code(bytes).prefix(AdmissionKey.macSize))
    }

    /// Whether `frame` is laid out like an init: its certificate length (at a fixed place) makes its whole
    /// length, and the certificate is no larger than one can be. Costs nothing: random bytes fail it (but
    /// for 1 in ~65,000) before any MAC is computed.
    public static func hasInitLayout(_ frame: ByteBuffer) -> Bool {
        let fixed = 2 + 4 + 32 + 2 + 1 + 64 + trailerSize
        guard let length = frame.getInteger(at: frame.readerIndex + 38, endianness: .big, as: UInt16.self),
              Int(length) <= MembershipCertificate.maximumEncodedSize else { return false }
        // First messages (a presence byte, then a stamp and their length) come after the certificate.
        let presence = frame.readerIndex + 40 + Int(length)
        switch frame.getInteger(at: presence, as: UInt8.self) {
        case 0: return frame.readableBytes == fixed + Int(length)
        case 1:
            guard let sealed = frame.getInteger(at: presence + 9, endianness: .big, as: UInt16.self),
                  Int(sealed) <= HandshakeMessage.maximumFirstMessages else { return false }
            return frame.readableBytes == fixed + Int(length) + 10 + Int(sealed)
        default: return false
        }
    }

    /// Whether `frame` (an init) carries the admission MAC of everything before it, just before its cookie MAC
    /// (compared in constant time).
    public func isValid(_ frame: ByteBuffer) -> Bool {
        guard frame.readableBytes > AdmissionKey.trailerSize else { return false }
        return frame.withUnsafeReadableBytes { bytes in
            let split = bytes.count - AdmissionKey.trailerSize
            let expected = code(UnsafeRawBufferPointer(rebasing: bytes[..<split]))
            return expected.withUnsafeBytes { mac in
                AdmissionKey.equal(UnsafeRawBufferPointer(rebasing: mac[..<AdmissionKey.macSize]),
                                   UnsafeRawBufferPointer(rebasing: bytes[split..<(split + AdmissionKey.macSize)]))
            }
        }
    }

    /// The cookie MAC of an init under `cookie`: over every byte before it (the admission MAC included).
    static func cookieMAC(of frame: UnsafeRawBufferPointer, cookie: [UInt8]) -> [UInt8] {
        let covered = UnsafeRawBufferPointer(rebasing: frame[..<(frame.count - AdmissionKey.macSize)])
        return Array(HMAC<SHA256>.authenticationCode(for: covered, using: SymmetricKey(data: cookie))
            .prefix(AdmissionKey.macSize))
    }

    /// Whether `frame` (an init) ends with its cookie MAC under `cookie`.
    static func hasCookieMAC(_ frame: ByteBuffer, cookie: [UInt8]) -> Bool {
        guard frame.readableBytes > AdmissionKey.trailerSize else { return false }
        return frame.withUnsafeReadableBytes { bytes in
            cookieMAC(of: bytes, cookie: cookie).withUnsafeBytes { mac in
                equal(mac, UnsafeRawBufferPointer(rebasing: bytes[(bytes.count - AdmissionKey.macSize)...]))
            }
        }
    }

    /// `frame` (an init) with its cookie MAC made under `cookie`.
    static func withCookie(_ frame: ByteBuffer, cookie: [UInt8]) -> ByteBuffer {
        var copy = frame
        let mac = copy.withUnsafeReadableBytes { cookieMAC(of: $0, cookie: cookie) }
        copy.setBytes(mac, at: copy.writerIndex - AdmissionKey.macSize)
        return copy
    }

    private static func equal(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in a.indices { difference |= a[index] ^ b[index] }
        return difference == 0
    }
}
