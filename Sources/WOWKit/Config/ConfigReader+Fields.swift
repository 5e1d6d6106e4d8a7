import Foundation
import Yams

/// The walker's vocabulary: a mapping's fields checked against the keys allowed there, and typed scalars.
extension ConfigReader {
    // MARK: Mappings and fields

    /// One key of a mapping (or one element of a list) and its value.
    struct Field {
        let name: String
        /// The dotted path, e.g. `overlords[1].name`.
        let path: String
        let key: Yams.Node
        let value: Yams.Node

        /// Where an error about the value points: the value, or its key when the value is empty (an empty
        /// scalar's mark lies past the end of the line).
        var position: Position? {
            ConfigReader.isNull(value) ? ConfigReader.position(of: key) : ConfigReader.position(of: value)
        }
    }

    /// A mapping's fields, its keys already checked against the ones allowed there.
    struct Fields {
        let path: String
        /// Where "missing key" errors point: the key the mapping sits under.
        let position: Position?
        let fields: [String: Field]

        func field(_ name: String) -> Field? { fields[name] }

        /// The value under `name`, nil when absent or empty (`key:` with nothing, `~`, `null`).
        func value(_ name: String) -> Yams.Node? {
            guard let field = fields[name], !ConfigReader.isNull(field.value) else { return nil }
            return field.value
        }

        func requiredField(_ name: String, reader: ConfigReader, hint: String) throws(ConfigError) -> Field {
            guard let field = fields[name] else {
                throw ConfigError(file: reader.file, at: position, key: ConfigReader.join(path, name),
                                  reason: "missing required key '\(name)'; \(hint)")
            }
            guard !ConfigReader.isNull(field.value) else {
                throw ConfigError(file: reader.file, at: field.position, key: field.path,
                                  reason: "'\(name)' has no value; \(hint)")
            }
            return field
        }

        func required(_ name: String, reader: ConfigReader, hint: String) throws(ConfigError) -> Yams.Node {
            try requiredField(name, reader: reader, hint: hint).value
        }
    }

    func fields(of node: Yams.Node, field: Field?, allowed: [String]) throws(ConfigError) -> Fields {
        // "Missing key" errors point at the key the mapping sits under (for a list element, the element).
        try fields(of: node, path: field?.path ?? "", at: field.flatMap { ConfigReader.position(of: $0.key) },
                   allowed: allowed)
    }

    func fields(of node: Yams.Node, path: String, at position: Position?,
                allowed: [String]) throws(ConfigError) -> Fields {
        guard case .mapping(let mapping) = node else {
            let keys = allowed.map { "'\($0)'" }.joined(separator: ", ")
            throw ConfigError(
                file: file, at: ConfigReader.position(of: node) ?? position, key: path,
                reason: "expected a mapping with keys \(keys), got \(ConfigReader.describe(node))")
        }
        var fields: [String: Field] = [:]
        for (key, value) in mapping {
            guard case .scalar(let scalar) = key else {
                throw ConfigError(file: file, at: ConfigReader.position(of: key), key: path,
                                  reason: "a key must be a plain name, got \(ConfigReader.describe(key))")
            }
            let name = scalar.string
            guard allowed.contains(name) else {
                var reason = "unknown key '\(name)'"
                if let guess = ConfigReader.closest(to: name, among: allowed) { reason += " (did you mean '\(guess)'?)" }
                reason += "; allowed \(path.isEmpty ? "at the top level" : "in '\(path)'"): "
                    + allowed.joined(separator: ", ")
                throw ConfigError(file: file, at: ConfigReader.position(of: key),
                                  key: ConfigReader.join(path, name), reason: reason)
            }
            fields[name] = Field(name: name, path: ConfigReader.join(path, name), key: key, value: value)
        }
        return Fields(path: path, position: position, fields: fields)
    }

    // MARK: Scalars

    func string(_ field: Field) throws(ConfigError) -> String {
        guard case .scalar(let scalar) = field.value else {
            throw typeError(at: field, expected: "a string", hint: nil)
        }
        return scalar.string
    }

    func boolean(_ field: Field) throws(ConfigError) -> Bool {
        guard case .scalar(let scalar) = field.value, ["true", "false"].contains(scalar.string) else {
            throw typeError(at: field, expected: "true or false", hint: nil)
        }
        return scalar.string == "true"
    }

    /// The integer under `name`, nil when the key is absent or empty.
    func integer(_ fields: Fields, _ name: String, in range: ClosedRange<Int>,
                 unit: String) throws(ConfigError) -> Int? {
        guard let field = fields.field(name), !ConfigReader.isNull(field.value) else { return nil }
        guard case .scalar(let scalar) = field.value,
              let value = Int(scalar.string.trimmingCharacters(in: .whitespaces)) else {
            throw typeError(at: field, expected: "an integer (\(unit))",
                            hint: "write a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        guard range.contains(value) else {
            throw error(at: field, "\(value) is out of range: \(name) must be from \(range.lowerBound) to "
                            + "\(range.upperBound) (\(unit))")
        }
        return value
    }
}
