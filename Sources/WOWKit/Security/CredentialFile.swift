import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads and writes WOW's key and certificate files: armored text (`-----BEGIN WOW CERTIFICATE-----`,
/// base64, `-----END ...`) so they survive copy and paste. Secret files are written atomically with mode
/// 0600 and refused on reading when group or others may read them.
public enum CredentialFile {
    /// What a file holds; the label in its armor lines.
    public enum Kind: String, Sendable, CaseIterable {
        case authorityKey = "WOW CA KEY"
        case authority = "WOW NETWORK CA"
        case nodeKey = "WOW NODE KEY"
        case certificate = "WOW CERTIFICATE"

        /// Whether the file holds a private key.
        public var isSecret: Bool { self == .authorityKey || self == .nodeKey }
    }

    /// Why a credential file could not be used; the description says what to do.
    public struct Failure: Error, CustomStringConvertible, Equatable, Sendable {
        public var path: String
        public var problem: String
        public var description: String { "\(path): \(problem)" }
    }

    /// The armored text of `bytes`.
    public static func armor(_ bytes: [UInt8], as kind: Kind) -> String {
        let base64 = Data(bytes).base64EncodedString()
        var lines = ["-----BEGIN \(kind.rawValue)-----"]
        var rest = Substring(base64)
        while !rest.isEmpty {
            lines.append(String(rest.prefix(64)))
            rest = rest.dropFirst(64)
        }
        lines.append("-----END \(kind.rawValue)-----")
        return lines.joined(separator: "\n") + "\n"
    }

    /// The bytes inside armored `text` of `kind`; `path` is for the error message.
    public static func dearmor(_ text: String, as kind: Kind, path: String) throws(Failure) -> [UInt8] {
        let lines = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
        let begin = "-----BEGIN \(kind.rawValue)-----", end = "-----END \(kind.rawValue)-----"
        guard let first = lines.firstIndex(of: begin), let last = lines.lastIndex(of: end), first < last else {
            let found = lines.first { $0.hasPrefix("-----BEGIN ") }.map { " (it holds \($0.dropFirst(11).dropLast(5)))" } ?? ""
            throw Failure(path: path, problem: "not a \(kind.rawValue.lowercased()) file\(found)")
        }
        guard let data = Data(base64Encoded: lines[(first + 1)..<last].joined()) else {
            throw Failure(path: path, problem: "the base64 between the armor lines is damaged")
        }
        return [UInt8](data)
    }

    /// Reads `path` as `kind`. A secret file that group or others may read is refused.
    public static func read(_ path: String, as kind: Kind) throws(Failure) -> [UInt8] {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw Failure(path: path, problem: "cannot read it: \(String(cString: strerror(errno)))")
        }
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw Failure(path: path, problem: "cannot read it as text")
        }
        // The kind first: a public file given where a key belongs is named as such.
        let bytes = try dearmor(text, as: kind, path: path)
        if kind.isSecret, info.st_mode & 0o077 != 0 {
            let mode = String(info.st_mode & 0o777, radix: 8)
            throw Failure(path: path, problem: "this private key is readable by other users (mode \(mode)); "
                + "run `chmod 600 \(path)` (and replace the key if others may have read it)")
        }
        return bytes
    }

    /// Writes `bytes` armored to `path` atomically (see `writeAtomically`). Secret files get mode 0600 from the
    /// start, others 0644. Refuses to replace an existing file unless `replacing`.
    public static func write(_ bytes: [UInt8], as kind: Kind, to path: String, replacing: Bool = false) throws(Failure) {
        if !replacing, FileManager.default.fileExists(atPath: path) {
            throw Failure(path: path, problem: "already exists; move it away first (or pass --force)")
        }
        if let problem = writeAtomically(Array(armor(bytes, as: kind).utf8), to: path, mode: kind.isSecret ? 0o600 : 0o644) {
            throw Failure(path: path, problem: problem)
        }
    }

    /// Writes `contents` to `path` through a temporary file in the same directory, synced and renamed into
    /// place: a crash or a concurrent reader (a running node) sees the old file or the new one, never half of
    /// one. The file has `mode` from its creation. Returns what went wrong, or nil.
    static func writeAtomically(_ contents: [UInt8], to path: String, mode: mode_t) -> String? {
        let temporary = path + ".tmp-\(getpid())"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, mode)
        guard descriptor >= 0 else { return "cannot create it: \(String(cString: strerror(errno)))" }
        // The umask may have narrowed the mode; an existing temporary file may have had another.
        fchmod(descriptor, mode)
        let written = contents.withUnsafeBytes { systemWrite(descriptor, $0.baseAddress, $0.count) }
        let synced = fsync(descriptor)
        close(descriptor)
        guard written == contents.count, synced == 0, rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            return "cannot write it: \(reason)"
        }
        return nil
    }
}

#if canImport(Glibc)
private let systemWrite = Glibc.write
#elseif canImport(Darwin)
private let systemWrite = Darwin.write
#endif
