extension NetworkAuthority {
    /// Whether `certificate` makes its holder a member of this network at `unixTime`: of this network,
    /// signed by this authority, within its validity period and not revoked. Nil when it does; else the
    /// first reason it does not, in that order.
    ///
    /// `NodeCredentials.check` asks the same of a peer's certificate; `wow cert show --ca` of a file.
    public func check(_ certificate: MembershipCertificate, at unixTime: Int64,
                      revoked: Set<CertificateFingerprint> = []) -> SecurityRefusal? {
        guard certificate.network == network else {
            return .wrongNetwork(name: certificate.name, expected: network, got: certificate.network)
        }
        guard certificate.isSigned(by: self) else { return .badCertificateSignature(name: certificate.name) }
        if unixTime < certificate.notBefore { return .notYetValid(name: certificate.name, notBefore: certificate.notBefore) }
        if unixTime > certificate.notAfter { return .expired(name: certificate.name, notAfter: certificate.notAfter) }
        if !revoked.isEmpty {
            let fingerprint = certificate.fingerprint
            if revoked.contains(fingerprint) { return .revoked(name: certificate.name, fingerprint: fingerprint) }
        }
        return nil
    }
}
