import ArgumentParser
import Plugins
import Transports
import WOWKit

/// The `wow` command-line tool as a library entry point, so that a build with extra plugins is the standard
/// tool plus those plugins (`WOW.main()` from a template's own executable).
public enum WOW {
    /// Registers extra plugins next to the built-in ones: called with the registries after the built-in
    /// transports and overlords are in them, so a plugin may also replace a built-in one of the same name.
    public typealias Registration = @Sendable (_ transports: inout TransportRegistry, _ overlords: inout OverlordRegistry) -> Void

    /// Parses the process arguments and runs the chosen subcommand; exits with its status.
    public static func main(arguments: [String]? = nil) {
        WOWRootCommand.main(arguments)
    }

    /// The standard tool plus the plugins `register` adds: what a plugin package's own executable calls
    /// (PluginTemplates/, docs/writing-a-transport.md). Every subcommand that builds nodes (`wow run`, the
    /// local overlay) then knows the plugins by name.
    public static func main(arguments: [String]? = nil, registering register: @escaping Registration) {
        extraRegistration = register
        WOWRootCommand.main(arguments)
    }

    // Written once, by `main(arguments:registering:)` before any subcommand runs, and only read afterwards.
    nonisolated(unsafe) private static var extraRegistration: Registration?

    /// The transports and link strategies this build of `wow` knows, by name.
    static func registries() -> (transports: TransportRegistry, overlords: OverlordRegistry) {
        var transports = TransportRegistry()
        TransportCatalog.registerTransports(in: &transports)
        var overlords = OverlordRegistry()
        PluginCatalog.registerOverlords(in: &overlords)
        extraRegistration?(&transports, &overlords)
        return (transports, overlords)
    }
}

/// `wow`: the root command.
struct WOWRootCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wow",
        abstract: "WOW: a self-organizing overlay network that gives scattered machines one flat virtual IP network.",
        subcommands: [DemoCommand.self, RunCommand.self, StatusCommand.self, PingCommand.self, SimCommand.self, CACommand.self,
                      KeygenCommand.self, CertCommand.self, BenchCommand.self, PluginCommand.self]
    )
}
