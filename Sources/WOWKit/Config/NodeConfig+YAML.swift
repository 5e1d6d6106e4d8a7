import Foundation
import Yams

/// Reading a node config from YAML (the format is documented in docs/config.md).
///
/// Parsing checks everything the file alone can tell: syntax, known keys, types, ranges, URIs, addresses,
/// duplicates. Whether the named transports and overlords exist, and whether their settings decode, depends
/// on the registries the program has; `validate(transports:overlords:)` checks that afterwards, with the
/// same file:line errors.
extension NodeConfig {
    /// Parses a config from YAML text.
    ///
    /// The `security` section's files (certificate, keys, revocation list) are read and checked here.
    ///
    /// - Parameters:
    ///   - yaml: The whole file.
    ///   - file: The name errors give for the text (the path, when it came from a file).
    ///   - directory: What relative paths in the config (`security.ca`, ...) are relative to: the config
    ///     file's directory; nil for the current directory.
    ///   - defaultOverlords: The overlords the node runs when the config has no `overlords` section: the
    ///     program's usual set (`wow` runs `PluginCatalog.defaultOverlordNames`). The core names none.
    /// - Throws: `ConfigError` naming the line, column and key of the first problem found.
    public init(yaml: String, file: String = "<config>", directory: String? = nil,
                defaultOverlords: [String] = []) throws(ConfigError) {
        let root: Yams.Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch {
            throw ConfigReader.syntaxError(error, file: file, yaml: yaml)
        }
        guard let root, !ConfigReader.isNull(root) else {
            throw ConfigError(
                file: file, line: nil, column: nil, key: "",
                reason: "the file is empty; a config needs at least a node name and one transport, e.g. "
                    + "'node: { name: alpha }' and 'transports: [ { scheme: udp } ]' (see docs/config.md)")
        }
        self = try ConfigReader(file: file, directory: directory, defaultOverlords: defaultOverlords).config(from: root)
    }

    /// Reads and parses the config file at `path`; errors name the file as `path`. `defaultOverlords` as for
    /// `init(yaml:file:directory:defaultOverlords:)`.
    public init(contentsOfFile path: String, defaultOverlords: [String] = []) throws(ConfigError) {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw ConfigError(
                file: path, line: nil, column: nil, key: "",
                reason: "cannot read the file (\(error.localizedDescription)); check the path and its permissions")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigError(file: path, line: nil, column: nil, key: "",
                              reason: "the file is not UTF-8 text; save it as UTF-8")
        }
        try self.init(yaml: text, file: path,
                      directory: URL(fileURLWithPath: path).deletingLastPathComponent().path,
                      defaultOverlords: defaultOverlords)
    }

    /// Checks the config against the plugins the program has: every transport scheme and overlord name must
    /// be registered, and every overlord's settings must decode into its settings type.
    ///
    /// Overlords are built here and thrown away (they are pure state machines, cheap and without I/O).
    /// Transports are not built: a listener may bind a socket, so their settings are decoded, and errors
    /// reported, when the node makes its listeners; `PluginEntry.configError(for:)` gives those errors the
    /// same file:line form.
    ///
    /// - Throws: `ConfigError` at the entry's name (unknown plugin, listing the known ones) or at its
    ///   settings (a setting the plugin refuses).
    public func validate(transports: TransportRegistry, overlords: OverlordRegistry) throws(ConfigError) {
        for (index, entry) in self.transports.enumerated() where !transports.contains(entry.name) {
            throw entry.configError(
                for: PluginError.unknownPlugin(kind: "transport", name: entry.name, known: transports.schemes),
                defaultKey: "transports[\(index)]")
        }
        for (index, entry) in self.overlords.enumerated() {
            guard overlords.contains(entry.name) else {
                throw entry.configError(
                    for: PluginError.unknownPlugin(kind: "overlord", name: entry.name, known: overlords.names),
                    defaultKey: "overlords[\(index)]")
            }
            do {
                _ = try overlords.makeOverlord(name: entry.name, settings: entry.settings)
            } catch {
                throw entry.configError(for: error, defaultKey: "overlords[\(index)]")
            }
        }
    }
}

extension NodeConfig.PluginEntry {
    /// Turns an error from making this entry's plugin (an unknown name, settings it cannot decode or refuses)
    /// into a `ConfigError` at the entry's place in the config file. For entries built in code (no `origin`)
    /// the error has no line and names the entry by `name`.
    public func configError(for error: any Error) -> ConfigError {
        configError(for: error, defaultKey: name)
    }

    func configError(for error: any Error, defaultKey: String) -> ConfigError {
        let file = origin?.file ?? "<config>"
        let key = origin?.key ?? defaultKey
        switch error {
        case let error as ConfigError:
            return error
        case PluginError.unknownPlugin(let kind, let name, let known):
            let nameKey = key + (kind == "transport" ? ".scheme" : ".name")
            var reason = "unknown \(kind) '\(name)'"
            if let guess = ConfigReader.closest(to: name, among: known) { reason += " (did you mean '\(guess)'?)" }
            if known.isEmpty {
                reason += "; this program registers no \(kind)s"
            } else {
                reason += "; known: \(known.joined(separator: ", ")). Use one of these or register the plugin"
            }
            return ConfigError(file: file, at: origin?.name, key: nameKey, reason: reason)
        case PluginError.badSettings(let plugin, let detail):
            return ConfigError(
                file: file, at: origin?.settings ?? origin?.entry, key: key + ".settings",
                reason: "settings of '\(plugin)' do not fit it: \(detail); fix them as the plugin's documentation says")
        default:
            return ConfigError(
                file: file, at: origin?.settings ?? origin?.entry, key: key + ".settings",
                reason: "'\(name)' refused its settings: \(error); fix them as the plugin's documentation says")
        }
    }
}
