extension NetworkAuthority {
    /// Whether `certificate` makes its holder a member of this network at `unixTime`: of this network,
    /// signed by this authority, within its validity period and not revoked. Nil when it does; else the
    /// first reason it does not, in that order.
    ///
    /// `NodeCredentials.check` asks the same of a peer's certificate; `wow cert show --ca` of a file.
    public func check(_ certificate: MembershipCertificate, at unixTime: Int64,
                      revoked: Set<CertificateFingerprint> = []) -> SecurityRefusal? {
        checkIssued(certificate) ?? NetworkAuthority.checkStanding(certificate, at: unixTime, revoked: revoked)
    }

    /// The part of `check` that never changes for a certificate: of this network and signed by this authority
    /// (the signature is the costly part). Nil when it is.
    public func checkIssued(_ certificate: MembershipCertificate) -> SecurityRefusal? {
        guard certificate.network == network else {
            return .wrongNetwork(name: certificate.name, expected: network, got: certificate.network)
        }
        guard certificate.isSigned(by: self) else { return .badCertificateSignature(name: certificate.name) }
        return nil
    }

    /// The part of `check` that changes with time and the revocation list, for a certificate whose network
    /// and signature were checked before (the signature is the costly part).
    public static func checkStanding(_ certificate: MembershipCertificate, at unixTime: Int64,
                                     revoked: Set<CertificateFingerprint>) -> SecurityRefusal? {
        if unixTime < certificate.notBefore { return .notYetValid(name: certificate.name, notBefore: certificate.notBefore) }
        if unixTime > certificate.notAfter { return .expired(name: certificate.name, notAfter: certificate.notAfter) }
        if !revoked.isEmpty {
            let fingerprint = certificate.fingerprint
            if revoked.contains(fingerprint) { return .revoked(name: certificate.name, fingerprint: fingerprint) }
        }
        return nil
    }
}
