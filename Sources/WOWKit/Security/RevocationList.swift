import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The certificates an operator revoked (`security.revoked`, `wow cert revoke`): a text file with one
/// certificate fingerprint (64 hex digits, `MembershipCertificate.fingerprint`) per line. Blank lines and
/// lines starting with `#` are ignored, as is anything after a `#` on a fingerprint's line.
///
/// ```
/// # laptop of bob, stolen 2025-03-02
/// 3f2a...c9e1
/// ```
public struct RevocationList: Equatable, Sendable {
    /// The revoked fingerprints.
    public var fingerprints: Set<CertificateFingerprint>

    public init(fingerprints: Set<CertificateFingerprint> = []) {
        self.fingerprints = fingerprints
    }

    /// Why a revocation list could not be read or written; the description names the file and line.
    public struct Failure: Error, CustomStringConvertible, Equatable, Sendable {
        public var path: String
        /// The line the problem is on, from 1; nil when the file as a whole is the problem.
        public var line: Int?
        public var problem: String

        public var description: String {
            line.map { "\(path):\($0): \(problem)" } ?? "\(path): \(problem)"
        }
    }

    /// Parses the text of a list; `path` is for the error message.
    public static func parse(_ text: String, path: String) throws(Failure) -> RevocationList {
        var fingerprints: Set<CertificateFingerprint> = []
        // "\r\n" is one Character, so Windows line ends split here too.
        let lines = text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" })
        for (index, line) in lines.enumerated() {
            let content = line.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let entry = content.trimmingCharacters(in: .whitespaces)
            if entry.isEmpty { continue }
            guard entry.count == 64, let fingerprint = CertificateFingerprint(hex: entry) else {
                let shown = entry.count > 20 ? entry.prefix(20) + "…" : Substring(entry)
                throw Failure(path: path, line: index + 1,
                              problem: "'\(shown)' is not a certificate fingerprint: write 64 hex digits per line "
                                  + "(as `wow cert show` prints them), or start the line with '#' for a comment")
            }
            fingerprints.insert(fingerprint)
        }
        return RevocationList(fingerprints: fingerprints)
    }

    /// Reads and parses the list at `path`.
    public static func read(_ path: String) throws(Failure) -> RevocationList {
        try parse(try text(at: path), path: path)
    }

    /// Adds `fingerprint` to the list at `path` (creating the file when missing), after a `# comment` line
    /// when `comment` is given. The file is replaced atomically, keeping its other lines as they were.
    ///
    /// - Returns: false when the list already held the fingerprint (the file is left alone).
    /// - Throws: `Failure` when the existing file is not a valid list or cannot be written.
    @discardableResult
    public static func add(_ fingerprint: CertificateFingerprint, comment: String?,
                           toFileAt path: String) throws(Failure) -> Bool {
        var text = ""
        if FileManager.default.fileExists(atPath: path) {
            text = try self.text(at: path)
            if try parse(text, path: path).fingerprints.contains(fingerprint) { return false }
            if !text.isEmpty, !text.hasSuffix("\n") { text += "\n" }
        }
        if let comment {
            text += "# " + comment.replacingOccurrences(of: "\n", with: " ") + "\n"
        }
        text += fingerprint.description + "\n"
        try writeAtomically(text, to: path)
        return true
    }

    private static func text(at path: String) throws(Failure) -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            let reason = FileManager.default.fileExists(atPath: path) ? "cannot read it (check its permissions)"
                : "no such file; create it (it may be empty) or fix the path"
            throw Failure(path: path, line: nil, problem: reason)
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw Failure(path: path, line: nil, problem: "not UTF-8 text")
        }
        return text
    }

    private static func writeAtomically(_ text: String, to path: String) throws(Failure) {
        if let problem = CredentialFile.writeAtomically(Array(text.utf8), to: path, mode: 0o644) {
            throw Failure(path: path, line: nil, problem: problem)
        }
    }
}
