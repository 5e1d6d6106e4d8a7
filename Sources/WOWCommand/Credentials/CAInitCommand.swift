import ArgumentParser
import Foundation
import WOWKit

/// `wow ca init`: creates a network, that is its certificate authority: `ca.key` (secret, signs
/// certificates) and `ca.crt` (public, every node holds a copy).
struct CAInitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Create a network: its CA key (ca.key, secret) and CA certificate (ca.crt, for every node)."
    )

    @Option(help: "The network's name (1 to 64 bytes), shown by `wow cert show`.")
    var name: String

    @Option(help: "The directory to write ca.key and ca.crt to (created when missing).")
    var dir = "."

    @Flag(help: "Replace an existing ca.key and ca.crt (certificates the old key signed stop verifying).")
    var force = false

    func validate() throws {
        do {
            try CredentialIO.validateName(name, flag: "--name")
        } catch {
            throw ValidationError("\(error)")
        }
    }

    func run() throws {
        let directory = URL(fileURLWithPath: dir, isDirectory: true)
        let keyPath = directory.appendingPathComponent("ca.key").path
        let certificatePath = directory.appendingPathComponent("ca.crt").path
        try CredentialIO.refuseExisting(
            [keyPath, certificatePath], force: force,
            consequence: "replacing a network's CA makes every certificate it signed worthless")
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw CommandFailure(description: "--dir: cannot create \(dir): \(error.localizedDescription)")
        }
        let key = NetworkAuthorityKey.create(name: name, now: CredentialIO.now)
        try CredentialIO.write(key.encoded, as: .authorityKey, to: keyPath, force: force)
        try CredentialIO.write(key.authority.encoded, as: .authority, to: certificatePath, force: force)
        print("network '\(name)': id \(key.authority.network)")
        print("CA key:         \(keyPath) (secret, mode 0600: it signs certificates; keep it offline)")
        print("CA certificate: \(certificatePath) (public: copy it to every node, config key security.ca)")
    }
}
