import ArgumentParser
import Foundation

/// `wow plugin new transport|overlord NAME`: a new plugin package from a template.
struct PluginNewCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "new",
        abstract: "Make a plugin package (a transport or a link strategy) from WOW's template.",
        discussion: """
            NAME (a letter, then letters and digits) names the package and types (capitalized) and, lowercased, \
            the URI scheme or overlord name: `wow plugin new transport Quic` makes ./Quic with QuicTransport and \
            scheme `quic`. The package depends on the WOW checkout found by walking up from the current \
            directory, then from this executable's location (a `wow` built in a checkout finds it), unless \
            --wow-path says where it is. Nothing is overwritten. See docs/writing-a-transport.md and \
            docs/writing-a-link-strategy.md.
            """
    )

    @Argument(help: "What to make: transport or overlord.")
    var kind: String

    @Argument(help: "The plugin's name: a letter, then letters and digits.")
    var name: String

    @Option(help: "The directory to create (default: ./NAME). Must not exist.")
    var into: String?

    @Option(help: "The WOW repository the package depends on (default: found above the current directory or this executable).")
    var wowPath: String?

    func run() throws {
        guard let kind = PluginScaffold.Kind(rawValue: kind) else {
            throw ValidationError("unknown plugin kind '\(kind)': use transport or overlord")
        }
        do {
            let scaffold = try PluginScaffold(kind: kind, name: name)
            let repository: String
            if let wowPath {
                let absolute = URL(fileURLWithPath: wowPath).standardizedFileURL.path
                guard PluginScaffold.isWOWRepository(absolute) else { throw PluginScaffold.Failure.notARepository(wowPath) }
                repository = absolute
            } else {
                var starts = [FileManager.default.currentDirectoryPath]
                if let executable = Self.executablePath() { starts.append((executable as NSString).deletingLastPathComponent) }
                repository = try PluginScaffold.findWOWRepository(from: starts)
            }
            let directory = URL(fileURLWithPath: into ?? name).standardizedFileURL.path
            try scaffold.write(into: directory, wowPath: repository)
            let executable = "\(scaffold.pluginName)-wow"
            print("wow: made \(kind.rawValue) plugin '\(scaffold.pluginName)' in \(directory), depending on WOW at \(repository)")
            print("next: cd \(directory) && swift test          # runs the plugin in the simulator")
            print("      swift run \(executable) --help        # wow with your plugin registered")
        } catch let failure as PluginScaffold.Failure {
            throw CommandFailure(description: failure.description)
        }
    }

    /// This process's executable, symlinks resolved (Linux: /proc/self/exe).
    static func executablePath() -> String? {
        if let resolved = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") { return resolved }
        guard let first = CommandLine.arguments.first, first.contains("/") else { return nil }
        return URL(fileURLWithPath: first).resolvingSymlinksInPath().path
    }
}
