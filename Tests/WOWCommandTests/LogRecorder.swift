import Foundation
import Logging

/// The log lines of every logger in a test, recorded from any thread, so that a test can check what a
/// component said (a refusal's reason, a reload) rather than only what it did.
///
/// Tests/WOWKitTests/LogRecorder.swift and Tests/WOWCommandTests/LogRecorder.swift are the same file, kept
/// identical on purpose: test targets cannot share sources, and a support module for this one small type
/// would cost the package more than the copy. Change both together.
final class LogRecorder: @unchecked Sendable {
    /// One logged line: the logger's label, the level, the message, and its metadata as `key=value` pairs
    /// sorted by key.
    struct Line: Sendable {
        let label: String
        let level: Logger.Level
        let message: String
        let metadata: String
    }

    // Safe: `recorded` is only touched under `lock` (handlers may log from transport threads).
    private let lock = NSLock()
    private var recorded: [Line] = []

    func record(_ line: Line) { lock.withLock { recorded.append(line) } }

    /// Lines logged by loggers labelled `label`, at `level` or above: each its message, then its metadata.
    func lines(of label: String, atLeast level: Logger.Level = .warning) -> [String] {
        lock.withLock {
            recorded.filter { $0.label == label && $0.level >= level }.map { "\($0.message) \($0.metadata)" }
        }
    }

    /// How many lines had exactly `message`, whoever logged them at whatever level.
    func count(of message: String) -> Int { lock.withLock { recorded.filter { $0.message == message }.count } }
}

/// A log handler that hands every line at `logLevel` or above to a `LogRecorder`.
struct RecordingLogHandler: LogHandler {
    let label: String
    let recorder: LogRecorder
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .debug
    var metadataProvider: Logger.MetadataProvider?

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let all = metadata.merging(event.metadata ?? [:]) { $1 }
        let details = all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        recorder.record(.init(label: label, level: event.level, message: event.message.description, metadata: details))
    }
}
