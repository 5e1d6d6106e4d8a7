import Yams

/// A plugin's settings as the config file gives them, decoded into the plugin's own `Settings` type.
public struct PluginSettings: @unchecked Sendable {
    // @unchecked: Yams.Node is an immutable value tree (enum of strings, arrays and mappings); it is only read.
    /// The YAML mapping under the plugin's entry; nil when the config gives none.
    public var node: Yams.Node?

    public init(node: Yams.Node? = nil) { self.node = node }

    /// No settings: every field takes its default.
    public static let empty = PluginSettings()

    /// Settings from YAML text (used by tests and the simulator).
    public init(yaml: String) throws {
        self.node = try Yams.compose(yaml: yaml)
    }

    /// Decodes into `type`; an error names the plugin and the offending key.
    public func decode<T: Decodable>(_ type: T.Type, for plugin: String) throws -> T {
        let node = self.node ?? Yams.Node.mapping(Yams.Node.Mapping([]))
        do {
            return try YAMLDecoder().decode(T.self, from: node)
        } catch let error as DecodingError {
            throw PluginError.badSettings(plugin: plugin, reason: PluginError.describe(error))
        }
    }
}

/// Errors from registries and plugin settings.
public enum PluginError: Error, Equatable, CustomStringConvertible {
    case unknownPlugin(kind: String, name: String, known: [String])
    case badSettings(plugin: String, reason: String)

    public var description: String {
        switch self {
        case .unknownPlugin(let kind, let name, let known):
            return "unknown \(kind) '\(name)'; known: \(known.joined(separator: ", "))"
        case .badSettings(let plugin, let reason):
            return "settings of '\(plugin)': \(reason)"
        }
    }

    static func describe(_ error: DecodingError) -> String {
        func path(_ keys: [any CodingKey]) -> String {
            keys.isEmpty ? "(top level)" : keys.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
        }
        switch error {
        case .typeMismatch(let type, let context):
            return "key '\(path(context.codingPath))' should be \(type): \(context.debugDescription)"
        case .valueNotFound(let type, let context):
            return "key '\(path(context.codingPath))' needs a \(type) value"
        case .keyNotFound(let key, let context):
            return "missing key '\(path(context.codingPath + [key]))'"
        case .dataCorrupted(let context):
            return "key '\(path(context.codingPath))': \(context.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }
}

/// A coding key that accepts any name, to see every key a mapping has.
struct AnySettingsKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

extension Decoder {
    /// A keyed container for plugin settings that rejects keys the settings do not have (a typo must not
    /// silently leave a default in place). Settings types decode optional keys with `decodeIfPresent` and keep
    /// their defaults for absent ones.
    public func settingsContainer<Key: CodingKey & CaseIterable>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        let all = try container(keyedBy: AnySettingsKey.self)
        let allowed = Key.allCases.map(\.stringValue)
        for key in all.allKeys where !allowed.contains(key.stringValue) {
            throw DecodingError.dataCorruptedError(
                forKey: key, in: all,
                debugDescription: "unknown key '\(key.stringValue)'; allowed: \(allowed.joined(separator: ", "))")
        }
        return try container(keyedBy: Key.self)
    }
}
