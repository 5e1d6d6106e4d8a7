import Foundation
import WOWKit
import XCTest

/// `wow cert revoke` as a process.
final class CertRevokeCommandTests: XCTestCase {
    func testRevokeCreatesTheListWithTheFingerprint() throws {
        let fixture = try CredentialFixture(self)
        try fixture.makeAuthority()
        let issued = try fixture.makeMember("alpha")
        let fingerprint = try XCTUnwrap(CredentialFixture.value("fingerprint", in: issued))
        let output = try fixture.succeed(["cert", "revoke", "--cert", fixture.path("alpha.crt"),
                                          "--list", fixture.path("revoked.txt")])
        XCTAssertTrue(output.contains("revoked 'alpha'"), output)
        let list = try RevocationList.read(fixture.path("revoked.txt"))
        XCTAssertEqual(list.fingerprints.map(\.description), [fingerprint])
        XCTAssertTrue(fixture.contents("revoked.txt")?.contains("# 'alpha' serial") == true)
    }

    func testRevokingTwiceListsTheFingerprintOnce() throws {
        let fixture = try CredentialFixture(self)
        try fixture.makeAuthority()
        let issued = try fixture.makeMember("alpha")
        let fingerprint = try XCTUnwrap(CredentialFixture.value("fingerprint", in: issued))
        let arguments = ["cert", "revoke", "--cert", fixture.path("alpha.crt"), "--list", fixture.path("revoked.txt")]
        try fixture.succeed(arguments)
        let second = try fixture.succeed(arguments)
        XCTAssertTrue(second.contains("already revoked"), second)
        let text = try XCTUnwrap(fixture.contents("revoked.txt"))
        XCTAssertEqual(text.components(separatedBy: fingerprint).count - 1, 1, text)
    }

    func testRevokeKeepsTheListsOtherLines() throws {
        let fixture = try CredentialFixture(self)
        try fixture.makeAuthority()
        try fixture.makeMember("alpha")
        try fixture.makeMember("beta")
        let existing = "# the lab's revocations\n\n" + String(repeating: "ab", count: 32)
        try existing.write(toFile: fixture.path("revoked.txt"), atomically: true, encoding: .utf8)
        try fixture.succeed(["cert", "revoke", "--cert", fixture.path("beta.crt"), "--list", fixture.path("revoked.txt")])
        let text = try XCTUnwrap(fixture.contents("revoked.txt"))
        XCTAssertTrue(text.hasPrefix(existing + "\n"), text)
        XCTAssertEqual(try RevocationList.read(fixture.path("revoked.txt")).fingerprints.count, 2)
    }

    func testRevokeRefusesABrokenListNamingItsLine() throws {
        let fixture = try CredentialFixture(self)
        try fixture.makeAuthority()
        try fixture.makeMember("alpha")
        try "# ok\nnot-a-fingerprint\n".write(toFile: fixture.path("revoked.txt"), atomically: true, encoding: .utf8)
        let result = try fixture.wow(["cert", "revoke", "--cert", fixture.path("alpha.crt"),
                                      "--list", fixture.path("revoked.txt")])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.output.contains(fixture.path("revoked.txt") + ":2:"), result.output)
        XCTAssertEqual(fixture.contents("revoked.txt"), "# ok\nnot-a-fingerprint\n", "the broken list was changed")
    }

    func testRevokeWithoutListIsAUsageError() throws {
        let fixture = try CredentialFixture(self)
        let result = try fixture.wow(["cert", "revoke", "--cert", fixture.path("alpha.crt")])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.output.contains("--list"), result.output)
    }
}
