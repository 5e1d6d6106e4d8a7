import Foundation
import WOWKit
import XCTest

@testable import WOWCommand

final class RevocationWatchTests: XCTestCase {
    private let a = CertificateFingerprint(hex: String(repeating: "a1", count: 32))!
    private let b = CertificateFingerprint(hex: String(repeating: "0b", count: 32))!

    private func temporaryPath() -> String {
        let path = NSTemporaryDirectory() + "wow-watch-\(UUID().uuidString).txt"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    func testFirstPollReadsTheListAndAnUnchangedFileIsNotReadAgain() throws {
        let path = temporaryPath()
        try RevocationList.add(a, comment: nil, toFileAt: path)
        var watch = RevocationWatch(path: path)
        XCTAssertEqual(watch.poll(), .updated(RevocationList(fingerprints: [a])))
        XCTAssertEqual(watch.poll(), .unchanged)
    }

    func testAnAtomicallyReplacedFileIsReadAgain() throws {
        let path = temporaryPath()
        try RevocationList.add(a, comment: nil, toFileAt: path)
        var watch = RevocationWatch(path: path)
        _ = watch.poll()
        try RevocationList.add(b, comment: "beta", toFileAt: path)
        XCTAssertEqual(watch.poll(), .updated(RevocationList(fingerprints: [a, b])))
        XCTAssertEqual(watch.poll(), .unchanged)
    }

    func testABrokenFileFailsOnceAndItsFixIsPickedUp() throws {
        let path = temporaryPath()
        try RevocationList.add(a, comment: nil, toFileAt: path)
        var watch = RevocationWatch(path: path)
        _ = watch.poll()
        try "\(a)\nbroken\n".write(toFile: path, atomically: true, encoding: .utf8)
        guard case .failed(let failure) = watch.poll() else { return XCTFail("a broken list was accepted") }
        XCTAssertEqual(failure.line, 2)
        XCTAssertEqual(watch.poll(), .unchanged, "the same broken file is reported once")
        try "\(b)\n".write(toFile: path, atomically: true, encoding: .utf8)
        XCTAssertEqual(watch.poll(), .updated(RevocationList(fingerprints: [b])))
    }

    func testAVanishedFileFailsOnceAndItsReturnIsPickedUp() throws {
        let path = temporaryPath()
        try RevocationList.add(a, comment: nil, toFileAt: path)
        var watch = RevocationWatch(path: path)
        _ = watch.poll()
        try FileManager.default.removeItem(atPath: path)
        guard case .failed = watch.poll() else { return XCTFail("a vanished list was not reported") }
        XCTAssertEqual(watch.poll(), .unchanged)
        try RevocationList.add(b, comment: nil, toFileAt: path)
        XCTAssertEqual(watch.poll(), .updated(RevocationList(fingerprints: [b])))
    }
}
