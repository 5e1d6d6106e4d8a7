import Foundation
import WOWKit
import XCTest

/// `wow keygen` as a process.
final class KeygenCommandTests: XCTestCase {
    func testKeygenWritesAnOwnerOnlyKeyAndPrintsItsPublicKey() throws {
        let fixture = try CredentialFixture(self)
        let output = try fixture.succeed(["keygen", "--out", fixture.path("node.key")])
        XCTAssertEqual(fixture.mode("node.key"), 0o600)
        XCTAssertTrue(fixture.contents("node.key")?.hasPrefix("-----BEGIN WOW NODE KEY-----") == true)
        let publicKey = try XCTUnwrap(CredentialFixture.value("public key", in: output), output)
        XCTAssertEqual(publicKey.count, 64)
        XCTAssertTrue(publicKey.allSatisfy(\.isHexDigit), publicKey)
        // The handshake key a bootstrap list may name: the one a node with this key advertises (derived from it).
        let handshakeKey = try XCTUnwrap(CredentialFixture.value("handshake key", in: output), output)
        let identity = try NodeIdentity.decode(try CredentialFile.read(fixture.path("node.key"), as: .nodeKey))
        XCTAssertEqual(handshakeKey, PublicKeyText.encode(StaticHandshakeKey.publicKey(for: identity)))
        XCTAssertNotEqual(handshakeKey, publicKey)
    }

    func testTwoKeysDiffer() throws {
        let fixture = try CredentialFixture(self)
        let a = try fixture.succeed(["keygen", "--out", fixture.path("a.key")])
        let b = try fixture.succeed(["keygen", "--out", fixture.path("b.key")])
        XCTAssertNotEqual(CredentialFixture.value("public key", in: a), CredentialFixture.value("public key", in: b))
    }

    func testKeygenRefusesToReplaceAKeyWithoutForce() throws {
        let fixture = try CredentialFixture(self)
        try fixture.succeed(["keygen", "--out", fixture.path("node.key")])
        let key = fixture.contents("node.key")
        let again = try fixture.wow(["keygen", "--out", fixture.path("node.key")])
        XCTAssertNotEqual(again.status, 0)
        XCTAssertTrue(again.output.contains("already exists"), again.output)
        XCTAssertEqual(fixture.contents("node.key"), key)
        try fixture.succeed(["keygen", "--out", fixture.path("node.key"), "--force"])
        XCTAssertNotEqual(fixture.contents("node.key"), key)
    }

    func testKeygenIntoAMissingDirectoryNamesThePath() throws {
        let fixture = try CredentialFixture(self)
        let result = try fixture.wow(["keygen", "--out", fixture.path("missing/node.key")])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.output.contains("missing/node.key"), result.output)
        XCTAssertTrue(result.output.contains("cannot create it"), result.output)
    }

    func testKeygenWithoutOutIsAUsageError() throws {
        let fixture = try CredentialFixture(self)
        let result = try fixture.wow(["keygen"])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.output.contains("--out"), result.output)
    }
}
