import ArgumentParser
import WOWKit

/// `wow cert issue`: the network's CA signs a node's membership certificate.
struct CertIssueCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "issue",
        abstract: "Sign a membership certificate for a node's public key with the network's CA key."
    )

    /// The last second a certificate may start at (9999-12-31T23:59:59Z), so its end cannot overflow.
    static let latestNotBefore: Int64 = 253_402_300_799

    @Option(help: "The network's CA key (ca.key from `wow ca init`).")
    var caKey: String

    @Option(help: "The node's key file (from `wow keygen`); its public key is certified.")
    var nodeKey: String?

    @Option(help: "The node's public key, 64 hex digits (as `wow keygen` prints it), instead of --node-key.")
    var publicKey: String?

    @Option(help: "The node's name (1 to 64 bytes).")
    var name: String

    @Option(name: .customLong("vip"), help: "A virtual IPv4 or IPv6 address the node may use (at most 8; the first one decides its ring address; the device carries the first of each family).")
    var virtualIPs: [String] = []

    @Option(help: "How many days the certificate is valid (1 to 36500).")
    var days = 365

    @Option(help: "When the certificate becomes valid, in seconds since 1970 UTC (default: now).")
    var notBefore: Int64?

    @Option(help: "The certificate file to write, e.g. node.crt (config key security.certificate).")
    var out: String

    @Flag(help: "Replace an existing certificate file.")
    var force = false

    func validate() throws {
        guard (nodeKey == nil) != (publicKey == nil) else {
            throw ValidationError("give the node's key as either --node-key FILE or --public-key HEX (one of them)")
        }
        if let publicKey, PublicKeyText.decode(publicKey) == nil {
            throw ValidationError("--public-key '\(publicKey)' is not a public key: give the 64 hex digits "
                                      + "`wow keygen` printed")
        }
        do {
            try CredentialIO.validateName(name, flag: "--name")
        } catch {
            throw ValidationError("\(error)")
        }
        _ = try parsedVirtualIPs()
        guard (1...36_500).contains(days) else {
            throw ValidationError("--days \(days) is out of range: give 1 to 36500 days")
        }
        if let notBefore, !(0...Self.latestNotBefore).contains(notBefore) {
            throw ValidationError("--not-before \(notBefore) is out of range: give seconds since 1970 from 0 to "
                                      + "\(Self.latestNotBefore) (the end of year 9999)")
        }
    }

    private func parsedVirtualIPs() throws -> [VirtualIP] {
        guard virtualIPs.count <= MembershipCertificate.maximumVirtualIPs else {
            throw ValidationError("\(virtualIPs.count) --vip options: a certificate holds at most "
                                      + "\(MembershipCertificate.maximumVirtualIPs) virtual IPs")
        }
        var parsed: [VirtualIP] = []
        for text in virtualIPs {
            guard let ip = VirtualIP(text) else {
                throw ValidationError("--vip '\(text)' is not an IPv4 or IPv6 address; write it like 100.64.0.7 "
                                          + "or fd77:6f77::7")
            }
            guard !parsed.contains(ip) else { throw ValidationError("--vip \(text) is given twice; give it once") }
            parsed.append(ip)
        }
        return parsed
    }

    func run() throws {
        try CredentialIO.refuseExisting([out], force: force, consequence: "it may be a node's certificate in use")
        let authorityKey = try CredentialIO.load(caKey, flag: "--ca-key", as: .authorityKey,
                                                 what: "network CA key (ca.key from `wow ca init`)",
                                                 decode: NetworkAuthorityKey.decode)
        let key: [UInt8]
        if let nodeKey {
            key = try CredentialIO.load(nodeKey, flag: "--node-key", as: .nodeKey, what: "node key (from `wow keygen`)",
                                        decode: NodeIdentity.decode).publicKey
        } else {
            key = PublicKeyText.decode(publicKey ?? "") ?? []
        }
        let start = notBefore ?? CredentialIO.now
        let end = start + Int64(days) * 86_400
        var random = SystemRandomNumberGenerator()
        let certificate: MembershipCertificate
        do {
            certificate = try authorityKey.issue(name: name, publicKey: key, virtualIPs: try parsedVirtualIPs(),
                                                 notBefore: start, notAfter: end, serial: random.next())
        } catch {
            throw CommandFailure(description: "cannot sign the certificate: \(error)")
        }
        try CredentialIO.write(certificate.encoded, as: .certificate, to: out, force: force)
        print("certificate: \(out) for '\(name)' in network '\(authorityKey.authority.name)' "
                  + "(\(authorityKey.authority.network))")
        print("valid: \(CredentialIO.date(start)) to \(CredentialIO.date(end))")
        print("fingerprint: \(certificate.fingerprint)")
        print("ring address: \(certificate.entitledAddress.hex)")
    }
}
