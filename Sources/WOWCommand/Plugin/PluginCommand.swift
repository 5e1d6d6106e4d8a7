import ArgumentParser

/// `wow plugin`: tools for plugin developers.
struct PluginCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plugin",
        abstract: "Make new plugins (transports, link strategies) from WOW's templates.",
        subcommands: [PluginNewCommand.self]
    )
}
