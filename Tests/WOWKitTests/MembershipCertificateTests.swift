import XCTest

@testable import WOWKit

/// Membership certificates: the wire form, the authority's signature, fingerprints and entitled addresses.
final class MembershipCertificateTests: XCTestCase {
    private let network = TestNetwork()

    /// A random name of 1...64 UTF-8 bytes, some of them multi-byte characters.
    private func randomName(_ random: inout SeededRandom) -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789-_.éñ日本🙂")
        var name = ""
        let target = random.int(1...64)
        while true {
            let next = String(alphabet[random.int(0...(alphabet.count - 1))])
            if name.utf8.count + next.utf8.count > target { break }
            name += next
        }
        return name.isEmpty ? "n" : name
    }

    private func randomCertificate(_ random: inout SeededRandom) throws -> MembershipCertificate {
        let identity = NodeIdentity.deterministic(seed: random.bytes(8))
        let vips = (0..<random.int(0...MembershipCertificate.maximumVirtualIPs)).map { _ in
            VirtualIP(UInt32(truncatingIfNeeded: random.next()))
        }
        let notBefore = Int64(random.int(0...2_000_000_000))
        return try network.authorityKey.issue(name: randomName(&random), publicKey: identity.publicKey,
                                              virtualIPs: vips, notBefore: notBefore,
                                              notAfter: notBefore + Int64(random.int(1...400_000_000)),
                                              serial: random.next())
    }

    func testEncodeDecodeRoundTripsRandomCertificates() throws {
        var random = SeededRandom(seed: 1)
        for _ in 0..<200 {
            let certificate = try randomCertificate(&random)
            XCTAssertLessThanOrEqual(certificate.encoded.count, MembershipCertificate.maximumEncodedSize)
            let decoded = try MembershipCertificate.decode(certificate.encoded)
            XCTAssertEqual(decoded, certificate)
            XCTAssertEqual(decoded.encoded, certificate.encoded)
            XCTAssertTrue(decoded.isSigned(by: network.authority))
        }
    }

    func testTheLargestCertificateHasTheDocumentedSize() throws {
        let certificate = try network.authorityKey.issue(
            name: String(repeating: "x", count: MembershipCertificate.maximumNameLength),
            publicKey: TestNetwork.identity("big").publicKey,
            virtualIPs: (1...MembershipCertificate.maximumVirtualIPs).map { VirtualIP("fd77:6f77::\($0)")! },
            notBefore: 0, notAfter: 1, serial: 1)
        XCTAssertEqual(certificate.encoded.count, MembershipCertificate.maximumEncodedSize)
        XCTAssertEqual(try MembershipCertificate.decode(certificate.encoded), certificate)
    }

    func testTheSignatureIsTheAuthoritysOnly() throws {
        let certificate = try network.certificate("alice")
        XCTAssertTrue(certificate.isSigned(by: network.authority))
        XCTAssertFalse(certificate.isSigned(by: TestNetwork(id: 1, keySeed: 9).authority))
        XCTAssertFalse(certificate.isSigned(by: TestNetwork(id: 2).authority))
        var unsigned = certificate
        unsigned.signature = []
        XCTAssertFalse(unsigned.isSigned(by: network.authority))
    }

    func testAnyModifiedByteBreaksTheSignatureOrTheParse() throws {
        let certificate = try network.certificate("alice", virtualIPs: [VirtualIP(0x6440_0001)])
        let encoded = certificate.encoded
        for index in encoded.indices {
            for mask: UInt8 in [0x01, 0x80, 0xFF] {
                var bytes = encoded
                bytes[index] ^= mask
                guard let decoded = try? MembershipCertificate.decode(bytes) else { continue }
                XCTAssertFalse(decoded.isSigned(by: network.authority), "byte \(index) ^ \(mask) still verifies")
            }
        }
    }

    func testDecodeIsTotalOnTruncatedAndGarbageInput() throws {
        let encoded = try network.certificate("alice", virtualIPs: [VirtualIP(1), VirtualIP(2)]).encoded
        for length in 0..<encoded.count {
            XCTAssertThrowsError(try MembershipCertificate.decode(Array(encoded.prefix(length))), "length \(length)")
        }
        XCTAssertThrowsError(try MembershipCertificate.decode(encoded + [0])) { error in
            XCTAssertEqual(error as? WireError, .trailingBytes(1))
        }
        var random = SeededRandom(seed: 8)
        for _ in 0..<1000 {
            var garbage = random.bytes(random.int(0...400))
            if !garbage.isEmpty, random.next() % 2 == 0 { garbage[0] = MembershipCertificate.formatVersion }
            if let decoded = try? MembershipCertificate.decode(garbage) {
                XCTAssertFalse(decoded.isSigned(by: network.authority))
            }
        }
    }

    func testSpecificDecodeErrors() throws {
        var encoded = try network.certificate("alice").encoded
        encoded[0] = 9
        XCTAssertThrowsError(try MembershipCertificate.decode(encoded)) { error in
            XCTAssertEqual(error as? WireError, .unknownValue(field: "certificate format", value: 9))
        }
        let withVIP = try network.certificate("alice", virtualIPs: [VirtualIP(1)]).encoded
        // format, network, serial, name length and "alice", key: then the VIP count and its family byte.
        let countIndex = 1 + 16 + 8 + 1 + 5 + 32
        var tooMany = withVIP
        tooMany[countIndex] = 9
        XCTAssertThrowsError(try MembershipCertificate.decode(tooMany)) { error in
            XCTAssertEqual(error as? WireError, .tooLong(field: "certificate vip_count", length: 9, limit: 8))
        }
        var family = withVIP
        family[countIndex + 1] = 7
        XCTAssertThrowsError(try MembershipCertificate.decode(family)) { error in
            XCTAssertEqual(error as? WireError, .unknownValue(field: "certificate vip family", value: 7))
        }
    }

    func testTheFingerprintIsStableAndDistinguishesCertificates() throws {
        let first = try network.certificate("alice", serial: 1)
        let again = try network.certificate("alice", serial: 1)
        let other = try network.certificate("alice", serial: 2)
        XCTAssertEqual(first.fingerprint, again.fingerprint, "Ed25519 signatures are deterministic")
        XCTAssertEqual(first.fingerprint, try MembershipCertificate.decode(first.encoded).fingerprint)
        XCTAssertNotEqual(first.fingerprint, other.fingerprint)
        XCTAssertEqual(first.fingerprint.bytes.count, 32)
        XCTAssertEqual(first.fingerprint.description.count, 64)
        XCTAssertEqual(CertificateFingerprint(hex: first.fingerprint.description), first.fingerprint)
        XCTAssertEqual(first.fingerprint.short, String(first.fingerprint.description.prefix(16)))
        XCTAssertNil(CertificateFingerprint(hex: "abcd"))
    }

    func testTheEntitledAddressComesFromTheFirstVirtualIPOrTheKey() throws {
        let ip = VirtualIP(0x6440_0007)
        let withIP = try network.certificate("alice", virtualIPs: [ip, VirtualIP(0x6440_0008)])
        let keyOnly = try network.certificate("alice")
        XCTAssertEqual(withIP.entitledAddress, Address.forVirtualIP(ip, network: network.id))
        XCTAssertNotEqual(keyOnly.entitledAddress, withIP.entitledAddress)
        // The key decides a router-only node's address; the name and serial do not.
        XCTAssertEqual(keyOnly.entitledAddress, try network.certificate("renamed", identity: TestNetwork.identity("alice"),
                                                                        serial: 9).entitledAddress)
        XCTAssertNotEqual(keyOnly.entitledAddress, try network.certificate("bob").entitledAddress)
    }

    func testTheEntitledAddressDiffersPerNetwork() throws {
        let other = TestNetwork(id: 2)
        let ip = VirtualIP(0x6440_0007)
        XCTAssertNotEqual(try network.certificate("alice", virtualIPs: [ip]).entitledAddress,
                          try other.certificate("alice", virtualIPs: [ip]).entitledAddress)
        XCTAssertNotEqual(try network.certificate("alice").entitledAddress,
                          try other.certificate("alice").entitledAddress)
    }

    func testCredentialsRefuseMismatchedPieces() throws {
        let alice = TestNetwork.identity("alice")
        XCTAssertThrowsError(try NodeCredentials(identity: TestNetwork.identity("bob"),
                                                 certificate: network.certificate("alice"),
                                                 authority: network.authority)) { error in
            XCTAssertEqual(error as? CredentialMismatch, .keyMismatch)
        }
        let other = TestNetwork(id: 2)
        XCTAssertThrowsError(try NodeCredentials(identity: alice, certificate: network.certificate("alice"),
                                                 authority: other.authority)) { error in
            XCTAssertEqual(error as? CredentialMismatch, .networkMismatch(certificate: network.id, authority: other.id))
        }
        XCTAssertThrowsError(try NodeCredentials(identity: alice, certificate: network.certificate("alice"),
                                                 authority: TestNetwork(id: 1, keySeed: 5).authority)) { error in
            XCTAssertEqual(error as? CredentialMismatch, .notSignedByAuthority)
        }
    }

    /// The authority's signature is verified once per certificate; everything else is checked every time.
    func testCredentialsVerifyACertificatesSignatureOnceAndItsStandingEveryTime() throws {
        var bob = try network.member("bob")
        let carol = try network.certificate("carol", notAfter: TestNetwork.unixTime + 10)
        XCTAssertNil(bob.check(carol, at: TestNetwork.unixTime))
        XCTAssertEqual(bob.verified.count, 1)
        XCTAssertNil(bob.check(carol, at: TestNetwork.unixTime))
        XCTAssertEqual(bob.verified.count, 1)
        // Known, but expired, then revoked: the time and the list are not cached.
        XCTAssertEqual(bob.check(carol, at: TestNetwork.unixTime + 11)?.code, SecurityRefusal.expired(name: "", notAfter: 0).code)
        bob.revoked = [carol.fingerprint]
        XCTAssertEqual(bob.check(carol, at: TestNetwork.unixTime)?.code,
                       SecurityRefusal.revoked(name: "", fingerprint: carol.fingerprint).code)
        bob.revoked = []
        // A copy of the credentials shares what was verified.
        let copy = bob
        XCTAssertNil(copy.check(carol, at: TestNetwork.unixTime))
        // The same fields under another signature, or from an impostor authority for the same network, are
        // not the certificate verified before.
        var forged = carol
        forged.signature[0] ^= 1
        XCTAssertEqual(bob.check(forged, at: TestNetwork.unixTime)?.code,
                       SecurityRefusal.badCertificateSignature(name: "").code)
        XCTAssertEqual(bob.check(forged, at: TestNetwork.unixTime)?.code,
                       SecurityRefusal.badCertificateSignature(name: "").code)
        let impostor = try TestNetwork(id: 1, keySeed: 9).certificate("carol", notAfter: TestNetwork.unixTime + 10)
        XCTAssertEqual(bob.check(impostor, at: TestNetwork.unixTime)?.code,
                       SecurityRefusal.badCertificateSignature(name: "").code)
        XCTAssertEqual(bob.verified.count, 1)
        // Another network's certificate is refused for its network.
        let elsewhere = try TestNetwork(id: 2).certificate("carol")
        XCTAssertEqual(bob.check(elsewhere, at: TestNetwork.unixTime)?.code,
                       SecurityRefusal.wrongNetwork(name: "", expected: network.id, got: network.id).code)
    }
}
