import ArgumentParser
import WOWKit

/// `wow keygen`: a node's identity key, the key its membership certificate names.
struct KeygenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen",
        abstract: "Create a node's identity key (secret, mode 0600) and print its public key and handshake key.",
        discussion: """
            The handshake key is derived from the identity key (the same after every restart). Other nodes'
            bootstrap lists may name it, so that their first link to this node takes one round trip:
              bootstrap:
                - {uri: udp://198.18.0.1:4000, handshake_key: <handshake key>}
            """
    )

    @Option(help: "The key file to write, e.g. node.key (config key security.key).")
    var out: String

    @Flag(help: "Replace an existing key file (its certificate then no longer matches).")
    var force = false

    func run() throws {
        try CredentialIO.refuseExisting(
            [out], force: force, consequence: "replacing a node key invalidates the certificate issued for it")
        let identity = NodeIdentity.generate()
        try CredentialIO.write(identity.encoded, as: .nodeKey, to: out, force: force)
        print("node key: \(out) (secret, mode 0600)")
        print("public key: \(PublicKeyText.encode(identity.publicKey))")
        print("handshake key: \(PublicKeyText.encode(StaticHandshakeKey.publicKey(for: identity)))")
    }
}
