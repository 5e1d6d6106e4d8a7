import Foundation
import XCTest

@testable import WOWKit

/// Armored key and certificate files: the text form, file modes for secrets, and the errors a user sees.
final class CredentialFileTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("wow-credentials-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    private func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    private func mode(_ path: String) throws -> Int {
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        return try XCTUnwrap(attributes[.posixPermissions] as? Int)
    }

    func testArmorRoundTripsForEveryKindAndLength() throws {
        var random = SeededRandom(seed: 2)
        for kind in CredentialFile.Kind.allCases {
            for length in [0, 1, 2, 3, 47, 48, 49, 241, 1000] {
                let bytes = random.bytes(length)
                let text = CredentialFile.armor(bytes, as: kind)
                XCTAssertTrue(text.hasPrefix("-----BEGIN \(kind.rawValue)-----\n"))
                XCTAssertTrue(text.hasSuffix("-----END \(kind.rawValue)-----\n"))
                XCTAssertTrue(text.split(separator: "\n").allSatisfy { $0.count <= 64 || $0.hasPrefix("-----") })
                XCTAssertEqual(try CredentialFile.dearmor(text, as: kind, path: "x"), bytes, "\(kind) \(length)")
            }
        }
    }

    func testDearmorToleratesSurroundingTextAndCRLF() throws {
        let bytes: [UInt8] = Array(0..<100)
        let text = "pasted from mail:\r\n" + CredentialFile.armor(bytes, as: .certificate).replacingOccurrences(of: "\n", with: "\r\n") + "  \n"
        XCTAssertEqual(try CredentialFile.dearmor(text, as: .certificate, path: "x"), bytes)
    }

    func testDamagedBase64IsReported() {
        var lines = CredentialFile.armor(Array(0..<100), as: .certificate).split(separator: "\n").map(String.init)
        lines[1] = "!!" + lines[1].dropFirst(2)
        XCTAssertThrowsError(try CredentialFile.dearmor(lines.joined(separator: "\n"), as: .certificate, path: "node.crt")) { error in
            let failure = error as? CredentialFile.Failure
            XCTAssertEqual(failure?.path, "node.crt")
            XCTAssertEqual(failure?.problem, "the base64 between the armor lines is damaged")
        }
    }

    func testAFileOfAnotherKindIsNamed() {
        let text = CredentialFile.armor([1, 2, 3], as: .authority)
        XCTAssertThrowsError(try CredentialFile.dearmor(text, as: .certificate, path: "node.crt")) { error in
            XCTAssertEqual((error as? CredentialFile.Failure)?.description,
                           "node.crt: not a wow certificate file (it holds WOW NETWORK CA)")
        }
        XCTAssertThrowsError(try CredentialFile.dearmor("hello", as: .nodeKey, path: "node.key")) { error in
            XCTAssertEqual((error as? CredentialFile.Failure)?.problem, "not a wow node key file")
        }
    }

    func testSecretsAreWrittenWithMode0600AndOthers0644() throws {
        let secret = path("node.key"), public_ = path("node.crt")
        try CredentialFile.write(TestNetwork.identity("alice").encoded, as: .nodeKey, to: secret)
        try CredentialFile.write([1, 2, 3], as: .certificate, to: public_)
        XCTAssertEqual(try mode(secret), 0o600)
        XCTAssertEqual(try mode(public_), 0o644)
        XCTAssertEqual(try CredentialFile.read(secret, as: .nodeKey), TestNetwork.identity("alice").encoded)
        XCTAssertEqual(try CredentialFile.read(public_, as: .certificate), [1, 2, 3])
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.contains(".tmp-") }
        XCTAssertEqual(leftovers, [], "the temporary file was renamed into place")
    }

    func testWriteRefusesToReplaceAnExistingFileUnlessAsked() throws {
        let file = path("ca.key")
        try CredentialFile.write([1], as: .authorityKey, to: file)
        XCTAssertThrowsError(try CredentialFile.write([2], as: .authorityKey, to: file)) { error in
            let failure = error as? CredentialFile.Failure
            XCTAssertEqual(failure?.path, file)
            XCTAssertTrue(failure?.problem.contains("already exists") == true, "\(String(describing: failure))")
        }
        XCTAssertEqual(try CredentialFile.read(file, as: .authorityKey), [1], "the old file is untouched")
        try CredentialFile.write([3], as: .authorityKey, to: file, replacing: true)
        XCTAssertEqual(try CredentialFile.read(file, as: .authorityKey), [3])
        XCTAssertEqual(try mode(file), 0o600)
    }

    func testReadRefusesASecretOthersMayRead() throws {
        let file = path("node.key")
        try CredentialFile.write([7], as: .nodeKey, to: file)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: file)
        XCTAssertThrowsError(try CredentialFile.read(file, as: .nodeKey)) { error in
            let failure = error as? CredentialFile.Failure
            XCTAssertEqual(failure?.path, file)
            XCTAssertTrue(failure?.problem.contains("mode 644") == true, "\(String(describing: failure))")
            XCTAssertTrue(failure?.problem.contains("chmod 600 \(file)") == true, "\(String(describing: failure))")
        }
        // A public file with the same mode is fine.
        let certificate = path("node.crt")
        try CredentialFile.write([8], as: .certificate, to: certificate)
        XCTAssertEqual(try CredentialFile.read(certificate, as: .certificate), [8])
    }

    func testReadingAMissingFileSaysSo() {
        let file = path("missing.crt")
        XCTAssertThrowsError(try CredentialFile.read(file, as: .certificate)) { error in
            let failure = error as? CredentialFile.Failure
            XCTAssertEqual(failure?.path, file)
            XCTAssertTrue(failure?.problem.hasPrefix("cannot read it:") == true, "\(String(describing: failure))")
        }
    }

    func testKeysRoundTripThroughTheirFiles() throws {
        let authorityKey = TestNetwork().authorityKey
        try CredentialFile.write(authorityKey.encoded, as: .authorityKey, to: path("ca.key"))
        try CredentialFile.write(authorityKey.authority.encoded, as: .authority, to: path("ca.crt"))
        let readKey = try NetworkAuthorityKey.decode(try CredentialFile.read(path("ca.key"), as: .authorityKey))
        XCTAssertEqual(readKey.authority, authorityKey.authority)
        XCTAssertEqual(try NetworkAuthority.decode(try CredentialFile.read(path("ca.crt"), as: .authority)),
                       authorityKey.authority)
        // The read key still signs for the same authority.
        let certificate = try readKey.issue(name: "alice", publicKey: TestNetwork.identity("alice").publicKey,
                                            virtualIPs: [], notBefore: 0, notAfter: 1, serial: 1)
        XCTAssertTrue(certificate.isSigned(by: authorityKey.authority))
    }
}
