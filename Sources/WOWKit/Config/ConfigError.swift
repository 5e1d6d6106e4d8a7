/// Why a node config file was refused: where (file, line, column, key) and what was wrong, with what to do.
///
/// `description` reads like a compiler diagnostic, so editors and terminals can jump to the place:
/// `alpha.yml:7:3: overlords[1].name: 'structured.near' appears twice; ...`.
public struct ConfigError: Error, CustomStringConvertible, Equatable, Sendable {
    /// A line and column in the file, both counted from 1 (columns in Unicode scalars, as libyaml counts).
    public struct Position: Sendable, Equatable, Hashable {
        public var line: Int
        public var column: Int

        public init(line: Int, column: Int) {
            self.line = line
            self.column = column
        }
    }

    /// The file as named to the parser (`<config>` for text given in code).
    public var file: String
    /// The line the problem is at, from 1; nil when the problem has no place (an unreadable file).
    public var line: Int?
    /// The column the problem is at, from 1; nil when `line` is.
    public var column: Int?
    /// The dotted path of the offending key, e.g. `overlords[1].name`; empty when the problem is not at a
    /// key (YAML syntax, an empty or unreadable file).
    public var key: String
    /// What is wrong and what to do about it.
    public var reason: String

    public init(file: String, line: Int?, column: Int?, key: String, reason: String) {
        self.file = file
        self.line = line
        self.column = line == nil ? nil : column
        self.key = key
        self.reason = reason
    }

    public init(file: String, at position: Position?, key: String, reason: String) {
        self.init(file: file, line: position?.line, column: position?.column, key: key, reason: reason)
    }

    /// The place as one value, when there is one.
    public var position: Position? {
        guard let line else { return nil }
        return Position(line: line, column: column ?? 1)
    }

    /// `file:line:column: key: reason`, leaving out what is unknown.
    public var description: String {
        var text = file
        if let line {
            text += ":\(line)"
            if let column { text += ":\(column)" }
        }
        text += ": "
        if !key.isEmpty { text += key + ": " }
        return text + reason
    }
}
