import ArgumentParser
import WOWKit

/// `wow cert show`: what a membership certificate says, and with `--ca` whether it is valid now.
struct CertShowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Print a membership certificate; with --ca, check it against the network's CA.",
        discussion: "With --ca the command fails (exit status 1) when the certificate is not valid now, saying why."
    )

    @Argument(help: "The certificate file.")
    var file: String

    @Option(help: "The network's CA certificate (ca.crt): check the signature, network and validity period.")
    var ca: String?

    func run() throws {
        let certificate = try CredentialIO.loadCertificate(file, flag: "certificate file")
        let authority = try ca.map { try CredentialIO.loadAuthority($0, flag: "--ca") }
        let ips = certificate.virtualIPs.map(\.description).joined(separator: ", ")
        print(Self.render([
            ("name", certificate.name),
            ("network", certificate.network.description),
            ("serial", String(certificate.serial, radix: 16)),
            ("public key", PublicKeyText.encode(certificate.publicKey)),
            ("virtual IPs", ips.isEmpty ? "none (a router-only node)" : ips),
            ("valid from", CredentialIO.date(certificate.notBefore)),
            ("valid until", CredentialIO.date(certificate.notAfter)),
            ("fingerprint", certificate.fingerprint.description),
            ("ring address", certificate.entitledAddress.hex),
        ]))
        guard let authority, let ca else { return }
        if let refusal = authority.check(certificate, at: CredentialIO.now) {
            throw CommandFailure(description: "NOT VALID against \(ca): \(refusal)")
        }
        print("valid: signed by the CA of network '\(authority.name)' (\(authority.network)), within its validity period")
    }

    static func render(_ rows: [(String, String)]) -> String {
        let width = rows.map(\.0.count).max() ?? 0
        return rows.map { ($0.0 + ":").padding(toLength: width + 2, withPad: " ", startingAt: 0) + $0.1 }
            .joined(separator: "\n")
    }
}
