import ArgumentParser
import WOWKit

/// `wow cert revoke`: adds a certificate's fingerprint to a revocation list (`security.revoked`), which
/// running nodes reread as it changes.
struct CertRevokeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revoke",
        abstract: "Add a certificate's fingerprint to a revocation list file (created when missing).",
        discussion: "Copy the list to every node (config key security.revoked); nodes reread it within 10 s."
    )

    @Option(help: "The certificate to revoke.")
    var cert: String

    @Option(help: "The revocation list file, e.g. revoked.txt.")
    var list: String

    func run() throws {
        let certificate = try CredentialIO.loadCertificate(cert, flag: "--cert")
        let fingerprint = certificate.fingerprint
        let comment = "'\(certificate.name)' serial \(String(certificate.serial, radix: 16)), revoked "
            + CredentialIO.date(CredentialIO.now)
        let added: Bool
        do {
            added = try RevocationList.add(fingerprint, comment: comment, toFileAt: list)
        } catch {
            throw CommandFailure(description: "--list: \(error.description)")
        }
        if added {
            print("revoked '\(certificate.name)': fingerprint \(fingerprint) added to \(list)")
        } else {
            print("'\(certificate.name)' is already revoked in \(list) (fingerprint \(fingerprint))")
        }
    }
}
