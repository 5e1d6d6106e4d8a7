import Foundation
import WOWKit

/// What the credential commands share: reading key and certificate files with messages that say which
/// flag named the wrong file, writing them without clobbering, and how names and dates look.
enum CredentialIO {
    /// Reads the file `flag` names as `kind` and decodes it.
    static func load<T>(_ path: String, flag: String, as kind: CredentialFile.Kind, what: String,
                        decode: ([UInt8]) throws(WireError) -> T) throws -> T {
        let bytes: [UInt8]
        do {
            bytes = try CredentialFile.read(path, as: kind)
        } catch {
            throw CommandFailure(description: "\(flag): \(error.description); \(flag) names a \(what)")
        }
        do {
            return try decode(bytes)
        } catch {
            throw CommandFailure(description: "\(flag): \(path) is not a valid \(what): \(error)")
        }
    }

    static func loadCertificate(_ path: String, flag: String) throws -> MembershipCertificate {
        try load(path, flag: flag, as: .certificate, what: "membership certificate (from `wow cert issue`)",
                 decode: MembershipCertificate.decode)
    }

    static func loadAuthority(_ path: String, flag: String) throws -> NetworkAuthority {
        try load(path, flag: flag, as: .authority, what: "network CA certificate (ca.crt from `wow ca init`)",
                 decode: NetworkAuthority.decode)
    }

    /// Writes `bytes` as `kind` to `path`; an existing file is replaced only when `force`.
    static func write(_ bytes: [UInt8], as kind: CredentialFile.Kind, to path: String, force: Bool) throws {
        do {
            try CredentialFile.write(bytes, as: kind, to: path, replacing: force)
        } catch {
            throw CommandFailure(description: error.description)
        }
    }

    /// Refuses up front when any of `paths` exists and `force` is not given, so a command writing several
    /// files writes all of them or none.
    static func refuseExisting(_ paths: [String], force: Bool, consequence: String) throws {
        guard !force, let existing = paths.first(where: { FileManager.default.fileExists(atPath: $0) }) else { return }
        throw CommandFailure(description: "\(existing) already exists; \(consequence). Pass --force to replace it, "
                                 + "or write elsewhere")
    }

    /// A network or node name as certificates carry it: 1 to 64 bytes of UTF-8, no control characters.
    static func validateName(_ name: String, flag: String) throws {
        let bytes = name.utf8.count
        guard bytes >= 1 else { throw CommandFailure(description: "\(flag) is empty; give 1 to 64 bytes, e.g. \(flag) alpha") }
        guard bytes <= MembershipCertificate.maximumNameLength else {
            throw CommandFailure(description: "\(flag) '\(name)' is \(bytes) bytes long; shorten it to at most "
                                     + "\(MembershipCertificate.maximumNameLength) bytes")
        }
        guard !name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw CommandFailure(description: "\(flag) contains a control character (tab, newline, ...); remove it")
        }
        guard VirtualIP(name) == nil else {
            throw CommandFailure(description: "\(flag) '\(name)' reads as an IP address; the name service finds members "
                                     + "by IP as well as by name, so give a name that is not one, e.g. \(flag) alpha")
        }
    }

    /// UTC, to the second: `2025-03-02T10:00:00Z`.
    static func date(_ unixSeconds: Int64) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: Date(timeIntervalSince1970: TimeInterval(unixSeconds)))
    }

    static var now: Int64 { Int64(Date().timeIntervalSince1970) }
}
