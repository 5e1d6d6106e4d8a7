import Yams

/// How the walker words its errors: where in the file (line, column, key) and what the value looked like.
extension ConfigReader {
    // MARK: Errors

    func error(at field: Field, _ reason: String) -> ConfigError {
        ConfigError(file: file, at: field.position, key: field.path, reason: reason)
    }

    func typeError(at field: Field, expected: String, hint: String?) -> ConfigError {
        var reason = "expected \(expected), got \(ConfigReader.describe(field.value))"
        if let hint { reason += "; \(hint)" }
        return error(at: field, reason)
    }

    /// A Yams error as a `ConfigError` at the line libyaml reports.
    static func syntaxError(_ error: any Error, file: String, yaml: String) -> ConfigError {
        func syntax(_ problem: String, _ context: YamlError.Context?, _ mark: Mark) -> ConfigError {
            var reason = "invalid YAML: \(problem)"
            if let context { reason += " (\(context.text) at line \(context.mark.line))" }
            let lines = yaml.split(separator: "\n", omittingEmptySubsequences: false)
            if mark.line >= 1, mark.line <= lines.count, lines[mark.line - 1].contains("\t") {
                reason += "; YAML indents with spaces, not tabs: replace the tabs on this line"
            } else if problem.contains("another document") {
                reason += "; a config is one YAML document: remove the second '---' and what follows it"
            } else if problem.contains("undefined alias") {
                reason += "; define the anchor ('&name') before using '*name', or quote a value that starts with '*'"
            } else {
                reason += "; fix the syntax here: check the indentation and closing brackets, and quote values "
                    + "that contain ': ' or start with '{', '[', '*', '&', '!' or '#'"
            }
            return ConfigError(file: file, at: position(of: mark, in: yaml), key: "", reason: reason)
        }
        guard let yamlError = error as? YamlError else {
            return ConfigError(file: file, line: nil, column: nil, key: "", reason: "invalid YAML: \(error)")
        }
        switch yamlError {
        case .scanner(let context, let problem, let mark, _),
             .parser(let context, let problem, let mark, _),
             .composer(let context, let problem, let mark, _):
            return syntax(problem, context, mark)
        case .duplicatedKeysInMapping(let duplicates, let context):
            let names = duplicates.map { "'\($0)'" }.joined(separator: ", ")
            return ConfigError(
                file: file, line: context.mark.line, column: context.mark.column, key: duplicates.first ?? "",
                reason: "key \(names) appears more than once in the same mapping; keep one and delete the others")
        case .reader(let problem, let offset, _, _):
            var position: Position?
            if let offset { position = ConfigReader.position(ofCharacterOffset: offset, in: yaml) }
            return ConfigError(file: file, at: position, key: "",
                               reason: "the text cannot be read as YAML: \(problem); remove the control character here")
        default:
            return ConfigError(file: file, line: nil, column: nil, key: "", reason: "invalid YAML: \(yamlError)")
        }
    }

    // MARK: Helpers

    static func join(_ path: String, _ name: String) -> String { path.isEmpty ? name : path + "." + name }

    static func position(of node: Yams.Node) -> Position? {
        node.mark.map { Position(line: $0.line, column: $0.column) }
    }

    /// Where libyaml's `mark` is in `yaml`. At the end of a text whose last line has no line break, libyaml
    /// ends that line itself and marks the start of the next one, which the file does not have: that place
    /// is the end of the last line.
    static func position(of mark: Mark, in yaml: String) -> Position {
        var lines = 1
        var lastLineLength = 0
        for character in yaml {
            switch character {
            // The line breaks libyaml counts: LF, CR, CR LF, NEL, LS and PS.
            case "\n", "\r", "\r\n", "\u{85}", "\u{2028}", "\u{2029}":
                lines += 1
                lastLineLength = 0
            default:
                // Columns count Unicode scalars, as libyaml does.
                lastLineLength += character.unicodeScalars.count
            }
        }
        guard mark.line > lines else { return Position(line: mark.line, column: mark.column) }
        return Position(line: lines, column: lastLineLength + 1)
    }

    static func position(ofCharacterOffset offset: Int, in text: String) -> Position {
        var line = 1
        var column = 1
        for character in text.prefix(offset) {
            if character == "\n" || character == "\r\n" {
                line += 1
                column = 1
            } else {
                column += 1
            }
        }
        return Position(line: line, column: column)
    }

    /// Whether the node is YAML's null: an empty value, `~` or `null` (unquoted).
    static func isNull(_ node: Yams.Node) -> Bool {
        guard case .scalar = node else { return false }
        return node.tag.rawValue == Tag.Name.null.rawValue
    }

    /// How a value reads in an error: `'abc'`, `a list`, `a mapping`.
    static func describe(_ node: Yams.Node) -> String {
        switch node {
        case .scalar(let scalar):
            return isNull(node) ? "nothing" : "'\(scalar.string)'"
        case .sequence: return "a list"
        case .mapping: return "a mapping"
        case .alias: return "an alias"
        }
    }
}
