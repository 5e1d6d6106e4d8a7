import Foundation

/// Why a node refuses a peer: the specific reason a handshake or link was refused, logged by the refusing
/// side, counted (`reason`), and sent to the refused side in a `refused` frame so its operator sees it too.
public enum SecurityRefusal: Error, Equatable, Sendable, CustomStringConvertible {
    /// The peer sent plaintext where this network requires a secure session: it runs without security.
    case noCertificate
    /// The peer's certificate does not parse.
    case malformedCertificate(String)
    /// The certificate belongs to another network.
    case wrongNetwork(name: String, expected: NetworkID, got: NetworkID)
    /// The certificate's signature is not our authority's.
    case badCertificateSignature(name: String)
    case notYetValid(name: String, notBefore: Int64)
    case expired(name: String, notAfter: Int64)
    case revoked(name: String, fingerprint: CertificateFingerprint)
    /// The handshake was not signed by the key the certificate names.
    case badHandshakeSignature(name: String)
    /// The peer claims a ring address its certificate does not entitle it to.
    case addressNotEntitled(name: String, claimed: Address, entitled: Address)
    /// An end-to-end session reached another node than the one addressed.
    case unexpectedPeer(name: String, expected: Address, got: Address)
    /// The other end refused us; `code` and `message` are its words.
    case refusedByPeer(code: UInt8, message: String)
    /// This node runs without security and cannot take part in a handshake.
    case securityDisabled

    /// The code carried in a `refused` frame.
    public var code: UInt8 {
        switch self {
        case .noCertificate: return 1
        case .malformedCertificate: return 2
        case .wrongNetwork: return 3
        case .badCertificateSignature: return 4
        case .notYetValid: return 5
        case .expired: return 6
        case .revoked: return 7
        case .badHandshakeSignature: return 8
        case .addressNotEntitled: return 9
        case .unexpectedPeer: return 10
        case .refusedByPeer(let code, _): return code
        case .securityDisabled: return 11
        }
    }

    /// A stable name for counters.
    public var reason: String {
        switch self {
        case .noCertificate: return "no_certificate"
        case .malformedCertificate: return "malformed_certificate"
        case .wrongNetwork: return "wrong_network"
        case .badCertificateSignature: return "bad_certificate_signature"
        case .notYetValid: return "certificate_not_yet_valid"
        case .expired: return "certificate_expired"
        case .revoked: return "certificate_revoked"
        case .badHandshakeSignature: return "bad_handshake_signature"
        case .addressNotEntitled: return "address_not_entitled"
        case .unexpectedPeer: return "unexpected_peer"
        case .refusedByPeer: return "refused_by_peer"
        case .securityDisabled: return "security_disabled"
        }
    }

    public var description: String {
        switch self {
        case .noCertificate:
            return "the peer sent unencrypted packets: it runs without security (no certificate), and this network "
                + "admits only members with a certificate"
        case .malformedCertificate(let why): return "the peer's certificate is malformed: \(why)"
        case .wrongNetwork(let name, let expected, let got):
            return "'\(name)' holds a certificate of network \(got), not of this network \(expected)"
        case .badCertificateSignature(let name):
            return "the certificate of '\(name)' is not signed by this network's authority"
        case .notYetValid(let name, let notBefore):
            return "the certificate of '\(name)' is not valid before \(SecurityRefusal.date(notBefore))"
        case .expired(let name, let notAfter):
            return "the certificate of '\(name)' expired at \(SecurityRefusal.date(notAfter))"
        case .revoked(let name, let fingerprint):
            return "the certificate of '\(name)' is revoked (fingerprint \(fingerprint.short)…)"
        case .badHandshakeSignature(let name):
            return "the handshake from '\(name)' is not signed by the key in its certificate"
        case .addressNotEntitled(let name, let claimed, let entitled):
            return "'\(name)' claims ring address \(claimed.short), but its certificate entitles it to \(entitled.short) only"
        case .unexpectedPeer(let name, let expected, let got):
            return "reached '\(name)' at \(got.short) instead of \(expected.short)"
        case .refusedByPeer(let code, let message): return "the peer refused us (code \(code)): \(message)"
        case .securityDisabled: return "this node runs without security (security.insecure) and accepts no handshake"
        }
    }

    /// UTC, to the second.
    static func date(_ unixSeconds: Int64) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: Date(timeIntervalSince1970: TimeInterval(unixSeconds)))
    }
}

/// The system's wall clock, for certificate validity.
public enum SystemClock {
    /// Seconds since 1970 (UTC).
    public static func unixTime() -> Int64 { Int64(Date().timeIntervalSince1970) }
    /// Microseconds since 1970 (UTC): the stamps of handshake inits that carry first messages.
    public static func unixMicroseconds() -> UInt64 { UInt64(max(Date().timeIntervalSince1970 * 1e6, 0)) }
}
