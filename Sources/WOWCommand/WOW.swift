import ArgumentParser
import Plugins
import Transports
import WOWKit

/// The `wow` command-line tool as a library entry point, so that a build with extra plugins is the standard
/// tool plus those plugins (`WOW.main()` from a template's own executable).
public enum WOW {
    /// Parses the process arguments and runs the chosen subcommand; exits with its status.
    public static func main(arguments: [String]? = nil) {
        WOWRootCommand.main(arguments)
    }

    /// The transports and link strategies this build of `wow` knows, by name.
    static func registries() -> (transports: TransportRegistry, overlords: OverlordRegistry) {
        var transports = TransportRegistry()
        TransportCatalog.registerTransports(in: &transports)
        var overlords = OverlordRegistry()
        PluginCatalog.registerOverlords(in: &overlords)
        return (transports, overlords)
    }
}

/// `wow`: the root command.
struct WOWRootCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wow",
        abstract: "WOW: a self-organizing overlay network that gives scattered machines one flat virtual IP network.",
        subcommands: [DemoCommand.self, RunCommand.self, StatusCommand.self, SimCommand.self, CACommand.self, KeygenCommand.self,
                      CertCommand.self, BenchCommand.self]
    )
}
