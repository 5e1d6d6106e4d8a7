import ArgumentParser

/// `wow ca`: a network's certificate authority.
struct CACommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ca",
        abstract: "Manage a network's certificate authority (see docs/security.md).",
        subcommands: [CAInitCommand.self]
    )
}
