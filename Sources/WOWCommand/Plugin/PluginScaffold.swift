import Foundation

/// What `wow plugin new` does, apart from argument parsing: makes a plugin package from a template, with the
/// names filled in and the dependency on WOW pointing at a WOW checkout.
///
/// The templates are compiled into the binary (`PluginTemplateFiles`, generated from `PluginTemplates/` by
/// `Scripts/embed-plugin-templates.py`; a test keeps the two identical), so `wow plugin new` works from any
/// directory, with any installed binary, without finding `PluginTemplates/` on disk. Only the WOW checkout the
/// new package depends on must be found (`--wow-path`, or `findWOWRepository`).
struct PluginScaffold {
    /// The kinds of plugin there is a template for.
    enum Kind: String, CaseIterable, Sendable {
        case transport
        case overlord

        /// The word in the template's names that the plugin's name replaces, capitalized as in type names;
        /// its lowercase form is the scheme or overlord name.
        var placeholder: String {
            switch self {
            case .transport: return "Loopback"
            case .overlord: return "RandomLinks"
            }
        }

        /// Names of this kind that the built-in plugins already use: a plugin under one of them would
        /// replace the built-in in its executable.
        var reservedNames: Set<String> {
            switch self {
            case .transport: return ["udp", "tcp", "tls", "relay", "memory", "memory-stream"]
            case .overlord: return ["leaf"]
            }
        }

        /// The template's files: path in the package, contents.
        var files: [(path: String, contents: String)] {
            switch self {
            case .transport: return PluginTemplateFiles.transport
            case .overlord: return PluginTemplateFiles.overlord
            }
        }
    }

    /// Why a plugin package could not be made; each says what to do.
    enum Failure: Error, Equatable, CustomStringConvertible {
        case badName(String, reason: String)
        case destinationExists(String)
        case repositoryNotFound(searched: [String])
        case notARepository(String)
        case cannotWrite(String, reason: String)

        var description: String {
            switch self {
            case .badName(let name, let reason):
                return "plugin name '\(name)': \(reason)"
            case .destinationExists(let path):
                return "\(path) already exists; choose another NAME or --into DIR (nothing is overwritten)"
            case .repositoryNotFound(let searched):
                return "cannot find the WOW repository (a directory with WOW's Package.swift and Sources/WOWKit) above "
                    + searched.joined(separator: " or ") + "; pass --wow-path PATH_TO_WOW"
            case .notARepository(let path):
                return "--wow-path \(path) is not a WOW repository (no Package.swift of package \"WOW\" with Sources/WOWKit)"
            case .cannotWrite(let path, let reason):
                return "cannot write \(path): \(reason)"
            }
        }
    }

    let kind: Kind
    /// The name as given: a letter, then letters and digits.
    let name: String

    /// Checks `name`: it becomes a Swift type-name prefix (capitalized), a package name and, lowercased, a URI
    /// scheme or overlord name, so it must be a letter followed by ASCII letters and digits, at most 40.
    init(kind: Kind, name: String) throws(Failure) {
        let bytes = Array(name.utf8)
        guard let first = bytes.first else { throw .badName(name, reason: "it is empty") }
        guard bytes.count <= 40 else { throw .badName(name, reason: "at most 40 characters, got \(bytes.count)") }
        func isLetter(_ byte: UInt8) -> Bool { (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte) }
        guard isLetter(first) else { throw .badName(name, reason: "must start with a letter (A-Z, a-z)") }
        guard bytes.allSatisfy({ isLetter($0) || (0x30...0x39).contains($0) }) else {
            throw .badName(name, reason: "use only ASCII letters and digits: it becomes a Swift type name and a URI scheme")
        }
        guard !kind.reservedNames.contains(name.lowercased()) else {
            throw .badName(name, reason: "'\(name.lowercased())' is a built-in \(kind.rawValue) of WOW; choose another")
        }
        self.kind = kind
        self.name = name
        guard !Self.takenModuleNames.contains(moduleName.lowercased()) else {
            throw .badName(name, reason: "the package's module would be '\(moduleName)', a module WOW or Swift already has; choose another")
        }
    }

    /// Modules a plugin package's own module must not be named after (lowercased): WOW's, its dependencies',
    /// the toolchain's.
    static let takenModuleNames: Set<String> = [
        "wowkit", "transports", "plugins", "wowcommand", "wow", "niocore", "nioposix", "nio", "niossl", "niotls",
        "logging", "crypto", "yams", "argumentparser", "x509", "swiftasn1", "foundation", "xctest", "testing",
        "swift", "dispatch", "glibc",
    ]

    /// The plugin package's library module: `QuicTransport` for a transport, `Kleinberg` for an overlord.
    var moduleName: String {
        switch kind {
        case .transport: return typePrefix + "Transport"
        case .overlord: return typePrefix
        }
    }

    /// The name in type names: `quic` -> `Quic`.
    var typePrefix: String { name.prefix(1).uppercased() + name.dropFirst() }
    /// The scheme or overlord name: `Quic` -> `quic`.
    var pluginName: String { name.lowercased() }

    /// The template's files with the names filled in and the WOW dependency at `wowPath`.
    func files(wowPath: String) -> [(path: String, contents: String)] {
        kind.files.map { file in
            (path: substitute(file.path), contents: substitute(file.contents, wowPath: wowPath))
        }
    }

    private func substitute(_ text: String, wowPath: String? = nil) -> String {
        var text = text
            .replacingOccurrences(of: kind.placeholder, with: typePrefix)
            .replacingOccurrences(of: kind.placeholder.lowercased(), with: pluginName)
        if let wowPath {
            let escaped = wowPath.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            text = text.replacingOccurrences(of: #".package(name: "WOW", path: "../..")"#,
                                             with: ".package(name: \"WOW\", path: \"\(escaped)\")")
        }
        return text
    }

    /// Writes the package into `directory`, which must not exist yet.
    func write(into directory: String, wowPath: String) throws(Failure) {
        let manager = FileManager.default
        guard !manager.fileExists(atPath: directory) else { throw .destinationExists(directory) }
        for file in files(wowPath: wowPath) {
            let path = (directory as NSString).appendingPathComponent(file.path)
            do {
                try manager.createDirectory(atPath: (path as NSString).deletingLastPathComponent,
                                            withIntermediateDirectories: true)
                try Data(file.contents.utf8).write(to: URL(fileURLWithPath: path))
            } catch {
                throw .cannotWrite(path, reason: "\(error.localizedDescription)")
            }
        }
    }

    /// Whether `path` is the root of a WOW checkout.
    static func isWOWRepository(_ path: String) -> Bool {
        let manifest = (path as NSString).appendingPathComponent("Package.swift")
        guard let text = try? String(contentsOfFile: manifest, encoding: .utf8) else { return false }
        var isDirectory: ObjCBool = false
        let kit = (path as NSString).appendingPathComponent("Sources/WOWKit")
        return text.contains(#"name: "WOW""#) && FileManager.default.fileExists(atPath: kit, isDirectory: &isDirectory)
            && isDirectory.boolValue
    }

    /// The nearest WOW checkout at or above each of `starts`, in order: the first found wins.
    static func findWOWRepository(from starts: [String]) throws(Failure) -> String {
        for start in starts {
            var directory = URL(fileURLWithPath: start).standardizedFileURL.path
            while true {
                if isWOWRepository(directory) { return directory }
                let parent = (directory as NSString).deletingLastPathComponent
                if parent == directory || parent.isEmpty { break }
                directory = parent
            }
        }
        throw .repositoryNotFound(searched: starts)
    }
}
