import ArgumentParser

/// The values a number option of a command accepts, with the one error for a value outside them: the
/// option, the value given, and what to give instead (`--timeout 0: use more than 0 and at most 3600
/// seconds`). Commands declare their limits with it, so each limit is written once and every command words
/// its range errors alike.
struct OptionRange<Value: Comparable & CustomStringConvertible & Sendable>: Sendable, CustomStringConvertible {
    let option: String
    let bounds: ClosedRange<Value>
    /// Whether the lower bound itself is refused too (a timeout of 0 s).
    let excludesLowerBound: Bool
    /// What the values count, plural: `nodes`, `milliseconds`.
    let unit: String

    init(_ option: String, _ bounds: ClosedRange<Value>, _ unit: String, excludesLowerBound: Bool = false) {
        self.option = option
        self.bounds = bounds
        self.unit = unit
        self.excludesLowerBound = excludesLowerBound
    }

    /// `value` if the option accepts it; a `ValidationError` otherwise.
    func check(_ value: Value) throws -> Value {
        guard bounds.contains(value), !(excludesLowerBound && value == bounds.lowerBound) else {
            throw ValidationError("\(option) \(value): use \(self)")
        }
        return value
    }

    /// The accepted values in words: `0 to 10000 milliseconds`, `more than 0 and at most 3600 seconds`.
    var description: String {
        let (low, high) = (Self.shown(bounds.lowerBound), Self.shown(bounds.upperBound))
        return excludesLowerBound ? "more than \(low) and at most \(high) \(unit)" : "\(low) to \(high) \(unit)"
    }

    /// A bound as a person writes it: `10000`, not `10000.0`.
    private static func shown(_ bound: Value) -> String {
        let text = bound.description
        return text.hasSuffix(".0") ? String(text.dropLast(2)) : text
    }
}
