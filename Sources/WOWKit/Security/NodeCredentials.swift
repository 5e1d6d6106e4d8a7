/// Everything a node proves its membership with and checks others' against: its identity key, its
/// certificate, the network's authority, and the certificates the operator revoked.
public struct NodeCredentials: Sendable {
    public let identity: NodeIdentity
    public let certificate: MembershipCertificate
    public let authority: NetworkAuthority
    /// Fingerprints of revoked certificates (`security.revoked`); replaced as the list file changes.
    public var revoked: Set<CertificateFingerprint>
    /// The key of the MAC on handshake inits, from the authority's key.
    public let admissionKey: AdmissionKey

    /// Checks that the pieces belong together: the certificate is for this key, of this network, signed by
    /// this authority. (Its validity period is checked against the clock by `check` and at start.)
    public init(identity: NodeIdentity, certificate: MembershipCertificate, authority: NetworkAuthority,
                revoked: Set<CertificateFingerprint> = []) throws(CredentialMismatch) {
        guard certificate.publicKey == identity.publicKey else { throw .keyMismatch }
        guard certificate.network == authority.network else {
            throw .networkMismatch(certificate: certificate.network, authority: authority.network)
        }
        guard certificate.isSigned(by: authority) else { throw .notSignedByAuthority }
        self.identity = identity
        self.certificate = certificate
        self.authority = authority
        self.revoked = revoked
        self.admissionKey = AdmissionKey(authority: authority)
    }

    /// The ring address the node's certificate entitles it to.
    public var address: Address { certificate.entitledAddress }

    /// Whether `peer` may take part in this network at `unixTime`; nil when it may.
    public func check(_ peer: MembershipCertificate, at unixTime: Int64) -> SecurityRefusal? {
        authority.check(peer, at: unixTime, revoked: revoked)
    }

    /// `check` without the network and signature, for certificates `check` accepted before.
    public func checkStanding(_ peer: MembershipCertificate, at unixTime: Int64) -> SecurityRefusal? {
        NetworkAuthority.checkStanding(peer, at: unixTime, revoked: revoked)
    }
}

/// Why a key, a certificate and an authority do not make a node's credentials.
public enum CredentialMismatch: Error, Equatable, Sendable, CustomStringConvertible {
    case keyMismatch
    case networkMismatch(certificate: NetworkID, authority: NetworkID)
    case notSignedByAuthority

    public var description: String {
        switch self {
        case .keyMismatch: return "the certificate was issued for another key than this node's key"
        case .networkMismatch(let certificate, let authority):
            return "the certificate is of network \(certificate), the authority's network is \(authority)"
        case .notSignedByAuthority: return "the certificate is not signed by this authority"
        }
    }
}
