import Foundation
import Logging
import WOWKit
import XCTest

@testable import WOWCommand

/// `NodeRuntime` around a secured node: the revocation list file followed while the node runs.
final class NodeRuntimeTests: XCTestCase {
    /// Log messages, collected from any thread.
    private final class LogRecord: @unchecked Sendable {
        // Safe: `messages` is only touched under `lock`.
        private let lock = NSLock()
        private var messages: [String] = []

        func append(_ message: String) { lock.withLock { messages.append(message) } }
        func count(of message: String) -> Int { lock.withLock { messages.filter { $0 == message }.count } }
    }

    private struct RecordingHandler: LogHandler {
        let record: LogRecord
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .info
        var metadataProvider: Logger.MetadataProvider?

        func log(event: LogEvent) { record.append(event.message.description) }

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
    }

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
        let authority = NetworkAuthorityKey.create(name: "lab", now: 0)
        let identity = NodeIdentity.generate()
        let now = Int64(Date().timeIntervalSince1970)
        let certificate = try authority.issue(name: "alpha", publicKey: identity.publicKey, virtualIPs: [],
                                              notBefore: now - 60, notAfter: now + 3600, serial: 1)
        try CredentialFile.write(authority.authority.encoded, as: .authority, to: directory + "/ca.crt")
        try CredentialFile.write(identity.encoded, as: .nodeKey, to: directory + "/node.key")
        try CredentialFile.write(certificate.encoded, as: .certificate, to: directory + "/node.crt")
        let revoked = directory + "/revoked.txt"
        try "".write(toFile: revoked, atomically: true, encoding: .utf8)
        let config = try NodeConfig(yaml: """
            node: { name: alpha }
            transports:
              - scheme: udp
                settings: { listen: "127.0.0.1:0" }
            security: { ca: ca.crt, certificate: node.crt, key: node.key, revoked: revoked.txt }
            """, directory: directory)

        let record = LogRecord()
        let logger = Logger(label: "wow.test") { _ in RecordingHandler(record: record) }
        let registries = WOW.registries()
        let runtime = try NodeRuntime.start(config: config, transports: registries.transports,
                                            overlords: registries.overlords, controlPath: nil, logger: logger,
                                            revocationPollInterval: .milliseconds(20))
        defer { runtime.shutdown() }

        Thread.sleep(forTimeInterval: 0.1)
        XCTAssertEqual(record.count(of: "revocation list reloaded"), 0, "reloaded an unchanged list")
        try RevocationList.add(CertificateFingerprint(hex: String(repeating: "ab", count: 32))!, comment: nil,
                               toFileAt: revoked)
        XCTAssertTrue(waitFor(5) { record.count(of: "revocation list reloaded") == 1 }, "the new list was not reloaded")

        try "broken\n".write(toFile: revoked, atomically: true, encoding: .utf8)
        let failure = "cannot use the revocation list; keeping the previous one"
        XCTAssertTrue(waitFor(5) { record.count(of: failure) == 1 }, "the broken list was not reported")
        Thread.sleep(forTimeInterval: 0.1)
        XCTAssertEqual(record.count(of: failure), 1, "the same broken file was reported more than once")
        XCTAssertEqual(record.count(of: "revocation list reloaded"), 1)
    }
}
