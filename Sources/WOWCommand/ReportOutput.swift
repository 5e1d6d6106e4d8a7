import ArgumentParser
import Foundation

/// `--json`, for commands that end in a report (`wow demo`, `wow sim`): the report for people, or one JSON
/// object with sorted keys for scripts.
struct ReportOutput: ParsableArguments {
    @Flag(help: "Print one JSON object instead of the human-readable report.")
    var json = false

    /// Prints `report` as JSON, or as `humanReadable` words it.
    func print<Report: Encodable>(_ report: Report, humanReadable: (Report) -> String) throws {
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            Swift.print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            Swift.print(humanReadable(report))
        }
    }
}
