import Foundation
import XCTest

/// `wow cert show` as a process.
final class CertShowCommandTests: XCTestCase {
    func testShowPrintsEveryField() throws {
        let fixture = try CredentialFixture(self)
        try fixture.makeAuthority()
        try fixture.makeMember("alpha", virtualIPs: ["100.64.0.7", "100.64.0.8"],
                               extra: ["--not-before", "1767225600", "--days", "365"])
        let output = try fixture.succeed(["cert", "show", fixture.path("alpha.crt")])
        XCTAssertEqual(CredentialFixture.value("name", in: output), "alpha")
        XCTAssertEqual(CredentialFixture.value("network", in: output)?.count, 32, output)
        XCTAssertNotNil(CredentialFixture.value("serial", in: output), output)
        XCTAssertEqual(CredentialFixture.value("public key", in: output)?.count, 64, output)
        XCTAssertEqual(CredentialFixture.value("virtual IPs", in: output), "100.64.0.7, 100.64.0.8")
        XCTAssertEqual(CredentialFixture.value("valid from", in: output), "2026-01-01T00:00:00Z")
        XCTAssertEqual(CredentialFixture.value("valid until", in: output), "2027-01-01T00:00:00Z")
        XCTAssertEqual(CredentialFixture.value("fingerprint", in: output)?.count, 64, output)
        XCTAssertEqual(CredentialFixture.value("ring address", in: output)?.count, 40, output)
        XCTAssertFalse(output.contains("valid: signed"), "no --ca, yet it claims a verdict: \(output)")
    }

    func testShowWithItsCASaysValid() throws {
        let fixture = try CredentialFixture(self)
        try fixture.makeAuthority(name: "lab")
        try fixture.makeMember("alpha")
        let output = try fixture.succeed(["cert", "show", fixture.path("alpha.crt"), "--ca", fixture.path("ca.crt")])
        XCTAssertTrue(output.contains("valid: signed by the CA of network 'lab'"), output)
    }

    func testShowWithAnotherNetworksCASaysWhyNot() throws {
        let fixture = try CredentialFixture(self)
        try fixture.makeAuthority()
        try fixture.makeMember("alpha")
        try fixture.succeed(["ca", "init", "--name", "other", "--dir", fixture.path("other")])
        let result = try fixture.wow(["cert", "show", fixture.path("alpha.crt"), "--ca", fixture.path("other/ca.crt")])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.output.contains("NOT VALID"), result.output)
        XCTAssertTrue(result.output.contains("holds a certificate of network"), result.output)
        XCTAssertEqual(CredentialFixture.value("name", in: result.output), "alpha", "the fields are still printed")
    }

    func testShowOfAnExpiredCertificateGivesTheDate() throws {
        let fixture = try CredentialFixture(self)
        try fixture.makeAuthority()
        try fixture.makeMember("alpha", extra: ["--not-before", "1000000000", "--days", "1"])
        let result = try fixture.wow(["cert", "show", fixture.path("alpha.crt"), "--ca", fixture.path("ca.crt")])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.output.contains("expired at 2001-09-10T01:46:40Z"), result.output)
    }

    func testShowOfANotYetValidCertificateGivesTheDate() throws {
        let fixture = try CredentialFixture(self)
        try fixture.makeAuthority()
        try fixture.makeMember("alpha", extra: ["--not-before", "4102444800"])
        let result = try fixture.wow(["cert", "show", fixture.path("alpha.crt"), "--ca", fixture.path("ca.crt")])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.output.contains("not valid before 2100-01-01T00:00:00Z"), result.output)
    }

    func testShowOfAFileThatIsNoCertificateSaysWhatItHolds() throws {
        let fixture = try CredentialFixture(self)
        try fixture.makeAuthority()
        let result = try fixture.wow(["cert", "show", fixture.path("ca.crt")])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.output.contains("not a wow certificate file (it holds WOW NETWORK CA)"), result.output)
    }

    func testShowOfAMissingFileNamesIt() throws {
        let fixture = try CredentialFixture(self)
        let result = try fixture.wow(["cert", "show", fixture.path("nope.crt")])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.output.contains(fixture.path("nope.crt") + ": cannot read it"), result.output)
    }
}
