import Plugins
import Foundation
import Logging
import WOWKit
import XCTest

@testable import WOWCommand

/// `NodeRuntime` around a secured node: the revocation list file followed while the node runs.
final class NodeRuntimeTests: XCTestCase {
    private func waitFor(_ timeout: TimeInterval, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if condition() { return true }
            Thread.sleep(forTimeInterval: 0.02)
        }
        return condition()
    }

    func testChangedRevocationListIsReloadedAndABrokenOneIsReportedAndSkipped() throws {
        let directory = NSTemporaryDirectory() + "wow-runtime-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: directory) }
        let now = Int64(Date().timeIntervalSince1970)
        let alpha = try NetworkAuthorityKey.create(name: "lab", now: 0)
            .member(name: "alpha", notBefore: now - 60, notAfter: now + 3600, serial: 1)
        try CredentialFile.write(alpha.authority.encoded, as: .authority, to: directory + "/ca.crt")
        try CredentialFile.write(alpha.identity.encoded, as: .nodeKey, to: directory + "/node.key")
        try CredentialFile.write(alpha.certificate.encoded, as: .certificate, to: directory + "/node.crt")
        let revoked = directory + "/revoked.txt"
        try "".write(toFile: revoked, atomically: true, encoding: .utf8)
        let config = try NodeConfig(yaml: """
            node: { name: alpha }
            transports:
              - scheme: udp
                settings: { listen: "127.0.0.1:0" }
            security: { ca: ca.crt, certificate: node.crt, key: node.key, revoked: revoked.txt }
            """, directory: directory, defaultOverlords: PluginCatalog.defaultOverlordNames)

        let recorder = LogRecorder()
        let logger = Logger(label: "wow.test") { RecordingLogHandler(label: $0, recorder: recorder, logLevel: .info) }
        let registries = WOW.registries()
        let runtime = try NodeRuntime.start(config: config, transports: registries.transports,
                                            overlords: registries.overlords, controlPath: nil, logger: logger,
                                            revocationPollInterval: .milliseconds(20))
        defer { runtime.shutdown() }

        Thread.sleep(forTimeInterval: 0.1)
        XCTAssertEqual(recorder.count(of: "revocation list reloaded"), 0, "reloaded an unchanged list")
        try RevocationList.add(CertificateFingerprint(hex: String(repeating: "ab", count: 32))!, comment: nil,
                               toFileAt: revoked)
        XCTAssertTrue(waitFor(5) { recorder.count(of: "revocation list reloaded") == 1 }, "the new list was not reloaded")

        try "broken\n".write(toFile: revoked, atomically: true, encoding: .utf8)
        let failure = "cannot use the revocation list; keeping the previous one"
        XCTAssertTrue(waitFor(5) { recorder.count(of: failure) == 1 }, "the broken list was not reported")
        Thread.sleep(forTimeInterval: 0.1)
        XCTAssertEqual(recorder.count(of: failure), 1, "the same broken file was reported more than once")
        XCTAssertEqual(recorder.count(of: "revocation list reloaded"), 1)
    }
}
