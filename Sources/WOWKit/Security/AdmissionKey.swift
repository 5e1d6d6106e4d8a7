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

    let key: SymmetricKey

    public init(authority: NetworkAuthority) {
        key = SymmetricKey(data: SHA256.hash(data: AdmissionKey.label + authority.publicKey))
    }

    /// A fresh HMAC each time: a copied, already-keyed `HMAC` value shares its digest state on Linux
    /// (swift-crypto's BoringSSL context), which crashed a node.
    private func code(_ bytes: UnsafeRawBufferPointer) -> HMAC<SHA256>.MAC {
        HMAC<SHA256>.authenticationCode(for: bytes, using: key)
    }

    /// The MAC of `bytes`.
    public func mac(_ bytes: UnsafeRawBufferPointer) -> [UInt8] {
        Array(code(bytes).prefix(AdmissionKey.macSize))
    }

    /// Whether `frame` is laid out like an init: its certificate length (at a fixed place) makes its whole
    /// length, and the certificate is no larger than one can be. Costs nothing: random bytes fail it (but
    /// for 1 in ~65,000) before any MAC is computed.
    public static func hasInitLayout(_ frame: ByteBuffer) -> Bool {
        let fixed = 2 + 4 + 32 + 2 + 64 + trailerSize
        guard let length = frame.getInteger(at: frame.readerIndex + 38, endianness: .big, as: UInt16.self),
              Int(length) <= MembershipCertificate.maximumEncodedSize else { return false }
        return frame.readableBytes == fixed + Int(length)
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
