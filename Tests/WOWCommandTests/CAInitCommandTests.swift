import Foundation
import XCTest

/// `wow ca init` as a process.
final class CAInitCommandTests: XCTestCase {
    func testInitWritesOwnerOnlyKeyAndReadableCertificateAndPrintsNetworkID() throws {
        let fixture = try CredentialFixture(self)
        let output = try fixture.succeed(["ca", "init", "--name", "lab", "--dir", fixture.directory])
        XCTAssertEqual(fixture.mode("ca.key"), 0o600)
        XCTAssertEqual(fixture.mode("ca.crt"), 0o644)
        XCTAssertTrue(fixture.contents("ca.key")?.hasPrefix("-----BEGIN WOW CA KEY-----") == true)
        XCTAssertTrue(fixture.contents("ca.crt")?.hasPrefix("-----BEGIN WOW NETWORK CA-----") == true)
        XCTAssertTrue(output.contains(fixture.path("ca.key")), output)
        XCTAssertTrue(output.contains(fixture.path("ca.crt")), output)
        let networkLine = try XCTUnwrap(output.split(separator: "\n").first { $0.hasPrefix("network 'lab': id ") }, output)
        let id = networkLine.dropFirst("network 'lab': id ".count)
        XCTAssertEqual(id.count, 32, output)
        XCTAssertTrue(id.allSatisfy(\.isHexDigit), output)
    }

    func testInitCreatesAMissingDirectory() throws {
        let fixture = try CredentialFixture(self)
        try fixture.succeed(["ca", "init", "--name", "lab", "--dir", fixture.path("new/ca")])
        XCTAssertTrue(fixture.exists("new/ca/ca.key"))
        XCTAssertTrue(fixture.exists("new/ca/ca.crt"))
    }

    func testInitRefusesToReplaceAnExistingAuthorityWithoutForce() throws {
        let fixture = try CredentialFixture(self)
        try fixture.makeAuthority()
        let key = fixture.contents("ca.key")
        let again = try fixture.wow(["ca", "init", "--name", "lab", "--dir", fixture.directory])
        XCTAssertNotEqual(again.status, 0)
        XCTAssertTrue(again.output.contains("already exists"), again.output)
        XCTAssertTrue(again.output.contains("--force"), again.output)
        XCTAssertEqual(fixture.contents("ca.key"), key, "the existing key was touched")

        try fixture.succeed(["ca", "init", "--name", "lab", "--dir", fixture.directory, "--force"])
        XCTAssertNotEqual(fixture.contents("ca.key"), key, "--force did not replace the key")
        XCTAssertEqual(fixture.mode("ca.key"), 0o600)
    }

    func testInitRefusesEmptyAndOverlongNames() throws {
        let fixture = try CredentialFixture(self)
        let empty = try fixture.wow(["ca", "init", "--name", "", "--dir", fixture.directory])
        XCTAssertNotEqual(empty.status, 0)
        XCTAssertTrue(empty.output.contains("--name is empty"), empty.output)
        let long = try fixture.wow(["ca", "init", "--name", String(repeating: "n", count: 65), "--dir", fixture.directory])
        XCTAssertNotEqual(long.status, 0)
        XCTAssertTrue(long.output.contains("65 bytes"), long.output)
        XCTAssertFalse(fixture.exists("ca.key"))
    }

    func testInitWithoutNameIsAUsageError() throws {
        let fixture = try CredentialFixture(self)
        let result = try fixture.wow(["ca", "init", "--dir", fixture.directory])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.output.contains("--name"), result.output)
    }
}
