import WOWKit

/// Membership certificates as they arrive in handshakes and certificate files: `MembershipCertificate.decode`,
/// then the full membership check a node makes of a peer (network, authority signature, validity, revocation).
///
/// Checks: a certificate that decodes re-encodes to exactly the input and decodes again to itself; the check
/// accepts only certificates the network's authority really issued (no forgery, however mangled), and refuses
/// the revoked one.
enum CertificateTarget: FuzzTarget {
    static let name = "certificate"
    static let summary = "MembershipCertificate.decode + membership check; canonical encoding, no forged acceptance"

    static func run(_ data: [UInt8]) {
        guard let certificate = try? MembershipCertificate.decode(data) else { return }
        require(certificate.encoded == data, "re-encoding differs")
        require((try? MembershipCertificate.decode(certificate.encoded)) == certificate, "round trip")
        _ = certificate.entitledAddress
        _ = certificate.fingerprint.short
        let checker = FuzzFixtures.bobRevokingDave
        if checker.check(certificate, at: FuzzFixtures.unixTime) == nil {
            require(FuzzFixtures.genuineCertificates.contains(data), "accepted a certificate the authority never signed: \(certificate)")
            require(certificate != FuzzFixtures.dave.certificate, "accepted the revoked certificate")
        }
    }

    static func seeds() -> [(key: String, bytes: [UInt8])] {
        var largest = FuzzFixtures.alice.certificate
        largest.name = String(repeating: "n", count: MembershipCertificate.maximumNameLength)
        largest.virtualIPs = (1...8).map { VirtualIP("fd77:6f77::\($0)")! }
        var dual = FuzzFixtures.alice.certificate
        dual.virtualIPs = [VirtualIP(0x6440_0001), VirtualIP("fd77:6f77::1")!]
        return [
            ("alice", FuzzFixtures.alice.certificate.encoded),
            ("carol", FuzzFixtures.carol.certificate.encoded),
            ("dave-revoked", FuzzFixtures.dave.certificate.encoded),
            ("router", FuzzFixtures.router.certificate.encoded),
            ("mallory-impostor", FuzzFixtures.mallory.certificate.encoded),
            ("largest-unsigned", largest.encoded),
            ("dual-stack-unsigned", dual.encoded),
        ]
    }
}
