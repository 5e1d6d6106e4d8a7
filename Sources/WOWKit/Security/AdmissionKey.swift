import Crypto
import NIOCore

/// The key of the admission MAC every handshake init carries (docs/security.md, "Admission"): derived from the
/// network authority's public key, which every member holds (its `ca.crt`) and no packet carries, so a node
/// tells an init from a member of its network from anything else with one HMAC, before it keeps any state
/// or checks any signature. Like WireGuard's `mac1`, it is not a secret against members: it only makes
/// outsiders' packets cheap to drop.
public struct AdmissionKey: Sendable {
    /// Bytes of the MAC at the end of an init.
    public static let macSize = 16
    static let label = Array("wow/admission/1".utf8)

    let key: SymmetricKey

    public init(authority: NetworkAuthority) {
        key = SymmetricKey(data: SHA256.hash(data: AdmissionKey.label + authority.publicKey))
    }

    /// The MAC of `bytes`.
    public func mac(_ bytes: UnsafeRawBufferPointer) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: bytes, using: key).prefix(AdmissionKey.macSize))
    }

    /// Whether `frame` ends with the MAC of everything before it (compared in constant time).
    public func isValid(_ frame: ByteBuffer) -> Bool {
        guard frame.readableBytes > AdmissionKey.macSize else { return false }
        return frame.withUnsafeReadableBytes { bytes in
            let split = bytes.count - AdmissionKey.macSize
            let expected = HMAC<SHA256>.authenticationCode(for: UnsafeRawBufferPointer(rebasing: bytes[..<split]),
                                                           using: key)
            var difference: UInt8 = 0
            for (offset, byte) in expected.prefix(AdmissionKey.macSize).enumerated() {
                difference |= byte ^ bytes[split + offset]
            }
            return difference == 0
        }
    }
}
