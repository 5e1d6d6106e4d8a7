import Foundation
import XCTest

/// `wow cert issue` as a process.
final class CertIssueCommandTests: XCTestCase {
    private func issue(_ fixture: CredentialFixture, _ extra: [String]) throws -> (status: Int32, output: String) {
        try fixture.wow(["cert", "issue", "--ca-key", fixture.path("ca.key"), "--name", "alpha",
                         "--out", fixture.path("alpha.crt")] + extra)
    }

    func testIssueWritesACertificateAndPrintsFingerprintAndRingAddress() throws {
        let fixture = try CredentialFixture(self)
        try fixture.makeAuthority()
        let output = try fixture.makeMember("alpha", virtualIPs: ["100.64.0.7"])
        XCTAssertEqual(fixture.mode("alpha.crt"), 0o644)
        XCTAssertTrue(fixture.contents("alpha.crt")?.hasPrefix("-----BEGIN WOW CERTIFICATE-----") == true)
        let fingerprint = try XCTUnwrap(CredentialFixture.value("fingerprint", in: output), output)
        XCTAssertEqual(fingerprint.count, 64)
        let address = try XCTUnwrap(CredentialFixture.value("ring address", in: output), output)
        XCTAssertEqual(address.count, 40)

        let shown = try fixture.succeed(["cert", "show", fixture.path("alpha.crt"), "--ca", fixture.path("ca.crt")])
        XCTAssertEqual(CredentialFixture.value("name", in: shown), "alpha")
        XCTAssertEqual(CredentialFixture.value("virtual IPs", in: shown), "100.64.0.7")
        XCTAssertEqual(CredentialFixture.value("fingerprint", in: shown), fingerprint)
        XCTAssertEqual(CredentialFixture.value("ring address", in: shown), address)
    }

    func testIPv6VirtualIPsAndNamesThatReadAsIPs() throws {
        let fixture = try CredentialFixture(self)
        try fixture.makeAuthority()
        try fixture.makeMember("alpha", virtualIPs: ["100.64.0.7", "FD77:6f77:0::7"])
        let shown = try fixture.succeed(["cert", "show", fixture.path("alpha.crt"), "--ca", fixture.path("ca.crt")])
        XCTAssertEqual(CredentialFixture.value("virtual IPs", in: shown), "100.64.0.7, fd77:6f77::7")
        try fixture.succeed(["keygen", "--out", fixture.path("beta.key")])
        let named = try fixture.wow(["cert", "issue", "--ca-key", fixture.path("ca.key"), "--name", "fd77:6f77::8",
                                     "--node-key", fixture.path("beta.key"), "--out", fixture.path("beta.crt")])
        XCTAssertNotEqual(named.status, 0)
        XCTAssertTrue(named.output.contains("--name 'fd77:6f77::8' reads as an IP address"), named.output)
        XCTAssertFalse(fixture.exists("beta.crt"))
    }

    func testIssueForAPublicKeyInHexCertifiesThatKey() throws {
        let fixture = try CredentialFixture(self)
        try fixture.makeAuthority()
        let keygen = try fixture.succeed(["keygen", "--out", fixture.path("alpha.key")])
        let publicKey = try XCTUnwrap(CredentialFixture.value("public key", in: keygen))
        let result = try issue(fixture, ["--public-key", publicKey])
        XCTAssertEqual(result.status, 0, result.output)
        let shown = try fixture.succeed(["cert", "show", fixture.path("alpha.crt")])
        XCTAssertEqual(CredentialFixture.value("public key", in: shown), publicKey)
        XCTAssertEqual(CredentialFixture.value("virtual IPs", in: shown), "none (a router-only node)")
    }

    func testDaysAndNotBeforeSetTheValidityPeriod() throws {
        let fixture = try CredentialFixture(self)
        try fixture.makeAuthority()
        try fixture.makeMember("alpha", extra: ["--not-before", "1767225600", "--days", "2"])
        let shown = try fixture.succeed(["cert", "show", fixture.path("alpha.crt")])
        XCTAssertEqual(CredentialFixture.value("valid from", in: shown), "2026-01-01T00:00:00Z")
        XCTAssertEqual(CredentialFixture.value("valid until", in: shown), "2026-01-03T00:00:00Z")
    }

    func testIssueRefusesToReplaceACertificateWithoutForce() throws {
        let fixture = try CredentialFixture(self)
        try fixture.makeAuthority()
        try fixture.makeMember("alpha")
        let before = fixture.contents("alpha.crt")
        let again = try issue(fixture, ["--node-key", fixture.path("alpha.key")])
        XCTAssertNotEqual(again.status, 0)
        XCTAssertTrue(again.output.contains("already exists"), again.output)
        XCTAssertEqual(fixture.contents("alpha.crt"), before)
        XCTAssertEqual(try issue(fixture, ["--node-key", fixture.path("alpha.key"), "--force"]).status, 0)
        XCTAssertNotEqual(fixture.contents("alpha.crt"), before)
    }

    func testBadVirtualIPIsRefusedByName() throws {
        let fixture = try CredentialFixture(self)
        try fixture.makeAuthority()
        try fixture.succeed(["keygen", "--out", fixture.path("alpha.key")])
        let result = try issue(fixture, ["--node-key", fixture.path("alpha.key"), "--vip", "100.64.0.300"])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.output.contains("--vip '100.64.0.300' is not an IPv4 or IPv6 address"), result.output)
        XCTAssertFalse(fixture.exists("alpha.crt"))
    }

    func testMoreThanEightVirtualIPsAreRefused() throws {
        let fixture = try CredentialFixture(self)
        try fixture.makeAuthority()
        try fixture.succeed(["keygen", "--out", fixture.path("alpha.key")])
        let vips = (1...9).flatMap { ["--vip", "100.64.0.\($0)"] }
        let result = try issue(fixture, ["--node-key", fixture.path("alpha.key")] + vips)
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.output.contains("at most 8 virtual IPs"), result.output)
    }

    func testDaysOutOfRangeAreRefused() throws {
        let fixture = try CredentialFixture(self)
        try fixture.makeAuthority()
        try fixture.succeed(["keygen", "--out", fixture.path("alpha.key")])
        for days in ["0", "36501"] {
            let result = try issue(fixture, ["--node-key", fixture.path("alpha.key"), "--days", days])
            XCTAssertNotEqual(result.status, 0)
            XCTAssertTrue(result.output.contains("--days \(days) is out of range"), result.output)
        }
    }

    func testExactlyOneOfNodeKeyAndPublicKeyIsRequired() throws {
        let fixture = try CredentialFixture(self)
        try fixture.makeAuthority()
        let keygen = try fixture.succeed(["keygen", "--out", fixture.path("alpha.key")])
        let publicKey = try XCTUnwrap(CredentialFixture.value("public key", in: keygen))
        let neither = try issue(fixture, [])
        XCTAssertNotEqual(neither.status, 0)
        XCTAssertTrue(neither.output.contains("either --node-key FILE or --public-key HEX"), neither.output)
        let both = try issue(fixture, ["--node-key", fixture.path("alpha.key"), "--public-key", publicKey])
        XCTAssertNotEqual(both.status, 0)
        XCTAssertTrue(both.output.contains("either --node-key FILE or --public-key HEX"), both.output)
    }

    func testMalformedPublicKeyIsRefused() throws {
        let fixture = try CredentialFixture(self)
        try fixture.makeAuthority()
        let result = try issue(fixture, ["--public-key", "abc123"])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.output.contains("--public-key 'abc123' is not a public key"), result.output)
    }

    func testGroupReadableCAKeyIsRefused() throws {
        let fixture = try CredentialFixture(self)
        try fixture.makeAuthority()
        try fixture.succeed(["keygen", "--out", fixture.path("alpha.key")])
        chmod(fixture.path("ca.key"), 0o640)
        let result = try issue(fixture, ["--node-key", fixture.path("alpha.key")])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.output.contains("--ca-key"), result.output)
        XCTAssertTrue(result.output.contains("readable by other users (mode 640)"), result.output)
        XCTAssertFalse(fixture.exists("alpha.crt"))
    }

    func testCACertificateGivenAsCAKeyIsRefusedSayingWhatItHolds() throws {
        let fixture = try CredentialFixture(self)
        try fixture.makeAuthority()
        try fixture.succeed(["keygen", "--out", fixture.path("alpha.key")])
        chmod(fixture.path("ca.crt"), 0o600)  // Else the mode check, which comes first, refuses it.
        let result = try fixture.wow(["cert", "issue", "--ca-key", fixture.path("ca.crt"), "--node-key",
                                      fixture.path("alpha.key"), "--name", "alpha", "--out", fixture.path("alpha.crt")])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.output.contains("it holds WOW NETWORK CA"), result.output)
    }
}
