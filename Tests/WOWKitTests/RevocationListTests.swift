import Foundation
import XCTest
@testable import WOWKit

final class RevocationListTests: XCTestCase {
    private let a = String(repeating: "a1", count: 32)
    private let b = String(repeating: "0b", count: 32)

    private func temporaryPath() -> String {
        let path = NSTemporaryDirectory() + "wow-revoked-\(UUID().uuidString).txt"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    func testFingerprintsAreReadIgnoringBlankLinesAndComments() throws {
        let text = "# revoked by the lab\n\n\(a)\n   \n  # indented comment\n\(b)  # bob's laptop\n"
        let list = try RevocationList.parse(text, path: "revoked.txt")
        XCTAssertEqual(list.fingerprints, [CertificateFingerprint(hex: a)!, CertificateFingerprint(hex: b)!])
    }

    func testEmptyTextIsAnEmptyList() throws {
        XCTAssertTrue(try RevocationList.parse("", path: "revoked.txt").fingerprints.isEmpty)
    }

    func testUppercaseHexAndWindowsLineEndsAreAccepted() throws {
        let list = try RevocationList.parse(a.uppercased() + "\r\n" + b + "\r\n", path: "revoked.txt")
        XCTAssertEqual(list.fingerprints.count, 2)
    }

    func testALineThatIsNoFingerprintNamesFileAndLine() {
        XCTAssertThrowsError(try RevocationList.parse("# header\n\(a)\nhello\n", path: "revoked.txt")) { error in
            let failure = error as? RevocationList.Failure
            XCTAssertEqual(failure?.line, 3)
            XCTAssertTrue(failure?.description.hasPrefix("revoked.txt:3: 'hello' is not a certificate fingerprint") == true,
                          failure?.description ?? "")
        }
    }

    func testAFingerprintOfTheWrongLengthIsRefused() {
        XCTAssertThrowsError(try RevocationList.parse(String(a.dropLast(2)), path: "r.txt")) { error in
            XCTAssertEqual((error as? RevocationList.Failure)?.line, 1)
        }
        XCTAssertThrowsError(try RevocationList.parse(a + "00", path: "r.txt"))
    }

    func testReadingAMissingFileNamesIt() {
        XCTAssertThrowsError(try RevocationList.read("/nonexistent/revoked.txt")) { error in
            let description = (error as? RevocationList.Failure)?.description ?? ""
            XCTAssertTrue(description.hasPrefix("/nonexistent/revoked.txt: no such file"), description)
        }
    }

    func testAddCreatesTheFileWithCommentAndFingerprint() throws {
        let path = temporaryPath()
        let fingerprint = CertificateFingerprint(hex: a)!
        XCTAssertTrue(try RevocationList.add(fingerprint, comment: "alpha", toFileAt: path))
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "# alpha\n\(a)\n")
        XCTAssertEqual(try RevocationList.read(path).fingerprints, [fingerprint])
    }

    func testAddingAListedFingerprintLeavesTheFileAlone() throws {
        let path = temporaryPath()
        try "\(a.uppercased())".write(toFile: path, atomically: true, encoding: .utf8)
        XCTAssertFalse(try RevocationList.add(CertificateFingerprint(hex: a)!, comment: "again", toFileAt: path))
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), a.uppercased())
    }

    func testAddKeepsExistingLinesAndEndsAnUnterminatedLastLine() throws {
        let path = temporaryPath()
        try "# mine\n\(a)".write(toFile: path, atomically: true, encoding: .utf8)
        XCTAssertTrue(try RevocationList.add(CertificateFingerprint(hex: b)!, comment: nil, toFileAt: path))
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "# mine\n\(a)\n\(b)\n")
    }

    func testAddRefusesABrokenList() throws {
        let path = temporaryPath()
        try "junk\n".write(toFile: path, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try RevocationList.add(CertificateFingerprint(hex: a)!, comment: nil, toFileAt: path)) { error in
            XCTAssertEqual((error as? RevocationList.Failure)?.line, 1)
        }
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "junk\n")
    }
}
