import Foundation
import Yams

extension ConfigReader {
    static let securityKeys = ["insecure", "ca", "certificate", "key", "revoked", "rekey_after_s"]

    /// The `security` section: `insecure: true`, or the node's credential files, read and checked here so
    /// that a node never starts with credentials that cannot work.
    func security(_ top: Fields, node: Fields,
                  configuredAddress: Address?) throws(ConfigError) -> NodeConfig.Security {
        guard let sectionField = top.field("security"), !ConfigReader.isNull(sectionField.value) else {
            return .unspecified
        }
        let section = try fields(of: sectionField.value, field: sectionField, allowed: ConfigReader.securityKeys)
        if let insecure = section.field("insecure"), !ConfigReader.isNull(insecure.value), try boolean(insecure) {
            if let other = ConfigReader.securityKeys.dropFirst().lazy.compactMap({ section.field($0) }).first {
                throw error(at: other, "'\(other.name)' has no use beside 'insecure: true', which runs the node "
                                + "without credentials; remove '\(other.name)', or remove 'insecure' to run secured")
            }
            return .insecure
        }

        let hint = "a secured node needs 'ca', 'certificate' and 'key' (make them with `wow ca init`, `wow keygen` "
            + "and `wow cert issue`; see docs/security.md), or write 'insecure: true' to run an open lab node"
        let caField = try section.requiredField("ca", reader: self, hint: hint)
        let certificateField = try section.requiredField("certificate", reader: self, hint: hint)
        let keyField = try section.requiredField("key", reader: self, hint: hint)
        let authority = try credential(caField, as: .authority, what: "network CA (ca.crt from `wow ca init`)",
                                       decode: NetworkAuthority.decode)
        let identity = try credential(keyField, as: .nodeKey, what: "node key (from `wow keygen`)",
                                      decode: NodeIdentity.decode)
        let certificate = try credential(certificateField, as: .certificate,
                                         what: "membership certificate (from `wow cert issue`)",
                                         decode: MembershipCertificate.decode)

        var revocationFile: String?
        var revoked = RevocationList()
        if let field = section.field("revoked"), !ConfigReader.isNull(field.value) {
            let path = try self.path(field)
            do {
                revoked = try RevocationList.read(path)
            } catch {
                throw self.error(at: field, error.description)
            }
            revocationFile = path
        }

        let credentials: NodeCredentials
        do {
            credentials = try NodeCredentials(identity: identity, certificate: certificate, authority: authority,
                                              revoked: revoked.fingerprints)
        } catch {
            let certificatePath = (try? path(certificateField)) ?? certificateField.name
            if error == .keyMismatch {
                throw self.error(at: keyField, "\(error.description) (\(certificatePath) names key "
                                     + "\(PublicKeyText.encode(certificate.publicKey).prefix(16))…, this key is "
                                     + "\(PublicKeyText.encode(identity.publicKey).prefix(16))…); give the key the "
                                     + "certificate was issued for, or issue one for this key with `wow cert issue "
                                     + "--node-key`")
            }
            throw self.error(at: certificateField, "\(error.description); issue this node a certificate with the "
                                 + "network's CA key (`wow cert issue --ca-key ca.key`), or give that network's ca.crt")
        }

        let now = Int64(Date().timeIntervalSince1970)
        if let refusal = authority.check(certificate, at: now, revoked: revoked.fingerprints) {
            var reason = refusal.description
            switch refusal {
            case .revoked: reason += " in \(revocationFile ?? "the revocation list"); this node may not join"
            default: reason += "; issue a new one with `wow cert issue` (see `wow cert show` for its dates)"
            }
            throw error(at: certificateField, reason)
        }

        if let configuredAddress, configuredAddress != credentials.address {
            let origin = certificate.virtualIPs.first.map { "its first virtual IP \($0)" } ?? "its key"
            let reason = "\(configuredAddress.hex) is not the ring address the certificate entitles this node to: "
                + "it entitles \(credentials.address.hex) only (from \(origin)); remove 'address' or set it to that"
            if let field = node.field("address") { throw error(at: field, reason) }
            throw ConfigError(file: file, at: node.position, key: "node.address", reason: reason)
        }

        var secured = NodeConfig.Secured(credentials: credentials, revocationFile: revocationFile)
        if let seconds = try integer(section, "rekey_after_s", in: 10...86_400, unit: "seconds") {
            secured.channel.rekeyAfter = .seconds(seconds)
            // Sessions are refused half as long again after the rekey time (120 s and 180 s by default).
            secured.channel.rejectAfter = .seconds(seconds + seconds / 2)
        }
        return .secured(secured)
    }


    func credential<T>(_ field: Field, as kind: CredentialFile.Kind, what: String,
                       decode: ([UInt8]) throws(WireError) -> T) throws(ConfigError) -> T {
        let path = try self.path(field)
        let bytes: [UInt8]
        do {
            bytes = try CredentialFile.read(path, as: kind)
        } catch {
            throw self.error(at: field, "\(error.description); '\(field.name)' names a \(what)")
        }
        do {
            return try decode(bytes)
        } catch {
            throw self.error(at: field, "\(path): not a valid \(what): \(error); make it again")
        }
    }

    /// A file path, relative ones taken relative to the config file's directory.
    func path(_ field: Field) throws(ConfigError) -> String {
        let text = try string(field)
        guard !text.isEmpty else { throw error(at: field, "the path is empty; name a file") }
        if text.hasPrefix("/") { return text }
        let base = URL(fileURLWithPath: directory ?? FileManager.default.currentDirectoryPath, isDirectory: true)
        return URL(fileURLWithPath: text, relativeTo: base).standardizedFileURL.path
    }
}
