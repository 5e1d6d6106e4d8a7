import ArgumentParser

/// `wow cert`: membership certificates.
struct CertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cert",
        abstract: "Issue, inspect and revoke membership certificates (see docs/security.md).",
        subcommands: [CertIssueCommand.self, CertShowCommand.self, CertRevokeCommand.self]
    )
}
