import Synchronization

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
    /// Certificates whose authority signature `check` has verified (shared by the copies of these credentials).
    let verified = VerifiedCertificates()

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
    ///
    /// The authority's signature is verified once per certificate: a node sees the same peers' certificates at
    /// every handshake and rekey, and a replayed genuine init then costs no certificate verification.
    public func check(_ peer: MembershipCertificate, at unixTime: Int64) -> SecurityRefusal? {
        let fingerprint = peer.fingerprint
        if !verified.contains(fingerprint) {
            if let refusal = authority.checkIssued(peer) { return refusal }
            verified.insert(fingerprint)
        }
        return checkStanding(peer, at: unixTime)
    }

    /// `check` without the network and signature, for certificates `check` accepted before.
    public func checkStanding(_ peer: MembershipCertificate, at unixTime: Int64) -> SecurityRefusal? {
        NetworkAuthority.checkStanding(peer, at: unixTime, revoked: revoked)
    }
}

/// The fingerprints (SHA-256 of the whole wire form, signature included) of certificates whose signature
/// verified under one authority. Only signed certificates get in, so its size is bounded by the members the
/// authority issued; it is emptied past `capacity` all the same.
final class VerifiedCertificates: Sendable {
    static let capacity = 4096
    private let fingerprints = Mutex(Set<CertificateFingerprint>())

    func contains(_ fingerprint: CertificateFingerprint) -> Bool {
        fingerprints.withLock { $0.contains(fingerprint) }
    }

    func insert(_ fingerprint: CertificateFingerprint) {
        fingerprints.withLock {
            if $0.count >= VerifiedCertificates.capacity { $0.removeAll() }
            $0.insert(fingerprint)
        }
    }

    var count: Int { fingerprints.withLock { $0.count } }
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

/// Credentials shared by reference: what a node's secure channels read for every frame (one reference to
/// copy instead of the credentials' many).
final class SharedCredentials: Sendable {
    let credentials: NodeCredentials
    init(_ credentials: NodeCredentials) { self.credentials = credentials }
}
