import Foundation
import Yams

/// Reading a node config from YAML (the format is documented in docs/config.md).
///
/// Parsing checks everything the file alone can tell: syntax, known keys, types, ranges, URIs, addresses,
/// duplicates. Whether the named transports and overlords exist, and whether their settings decode, depends
/// on the registries the program has; `validate(transports:overlords:)` checks that afterwards, with the
/// same file:line errors.
extension NodeConfig {
    /// The overlords a node runs when the config has no `overlords` section: Brunet's usual set.
    public static let defaultOverlordNames = ["leaf", "structured.near", "structured.far", "structured.shortcut"]

    /// Parses a config from YAML text.
    ///
    /// The `security` section's files (certificate, keys, revocation list) are read and checked here.
    ///
    /// - Parameters:
    ///   - yaml: The whole file.
    ///   - file: The name errors give for the text (the path, when it came from a file).
    ///   - directory: What relative paths in the config (`security.ca`, ...) are relative to: the config
    ///     file's directory; nil for the current directory.
    /// - Throws: `ConfigError` naming the line, column and key of the first problem found.
    public init(yaml: String, file: String = "<config>", directory: String? = nil) throws(ConfigError) {
        let root: Yams.Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch {
            throw ConfigReader.syntaxError(error, file: file, yaml: yaml)
        }
        guard let root, !ConfigReader.isNull(root) else {
            throw ConfigError(
                file: file, line: nil, column: nil, key: "",
                reason: "the file is empty; a config needs at least a node name and one transport, e.g. "
                    + "'node: { name: alpha }' and 'transports: [ { scheme: udp } ]' (see docs/config.md)")
        }
        self = try ConfigReader(file: file, directory: directory).config(from: root)
    }

    /// Reads and parses the config file at `path`; errors name the file as `path`.
    public init(contentsOfFile path: String) throws(ConfigError) {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw ConfigError(
                file: path, line: nil, column: nil, key: "",
                reason: "cannot read the file (\(error.localizedDescription)); check the path and its permissions")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigError(file: path, line: nil, column: nil, key: "",
                              reason: "the file is not UTF-8 text; save it as UTF-8")
        }
        try self.init(yaml: text, file: path,
                      directory: URL(fileURLWithPath: path).deletingLastPathComponent().path)
    }

    /// Checks the config against the plugins the program has: every transport scheme and overlord name must
    /// be registered, and every overlord's settings must decode into its settings type.
    ///
    /// Overlords are built here and thrown away (they are pure state machines, cheap and without I/O).
    /// Transports are not built: a listener may bind a socket, so their settings are decoded, and errors
    /// reported, when the node makes its listeners; `PluginEntry.configError(for:)` gives those errors the
    /// same file:line form.
    ///
    /// - Throws: `ConfigError` at the entry's name (unknown plugin, listing the known ones) or at its
    ///   settings (a setting the plugin refuses).
    public func validate(transports: TransportRegistry, overlords: OverlordRegistry) throws(ConfigError) {
        for (index, entry) in self.transports.enumerated() where !transports.contains(entry.name) {
            throw entry.configError(
                for: PluginError.unknownPlugin(kind: "transport", name: entry.name, known: transports.schemes),
                defaultKey: "transports[\(index)]")
        }
        for (index, entry) in self.overlords.enumerated() {
            guard overlords.contains(entry.name) else {
                throw entry.configError(
                    for: PluginError.unknownPlugin(kind: "overlord", name: entry.name, known: overlords.names),
                    defaultKey: "overlords[\(index)]")
            }
            do {
                _ = try overlords.makeOverlord(name: entry.name, settings: entry.settings)
            } catch {
                throw entry.configError(for: error, defaultKey: "overlords[\(index)]")
            }
        }
    }
}

extension NodeConfig.PluginEntry {
    /// Turns an error from making this entry's plugin (an unknown name, settings it cannot decode or refuses)
    /// into a `ConfigError` at the entry's place in the config file. For entries built in code (no `origin`)
    /// the error has no line and names the entry by `name`.
    public func configError(for error: any Error) -> ConfigError {
        configError(for: error, defaultKey: name)
    }

    func configError(for error: any Error, defaultKey: String) -> ConfigError {
        let file = origin?.file ?? "<config>"
        let key = origin?.key ?? defaultKey
        switch error {
        case let error as ConfigError:
            return error
        case PluginError.unknownPlugin(let kind, let name, let known):
            let nameKey = key + (kind == "transport" ? ".scheme" : ".name")
            var reason = "unknown \(kind) '\(name)'"
            if let guess = ConfigReader.closest(to: name, among: known) { reason += " (did you mean '\(guess)'?)" }
            if known.isEmpty {
                reason += "; this program registers no \(kind)s"
            } else {
                reason += "; known: \(known.joined(separator: ", ")). Use one of these or register the plugin"
            }
            return ConfigError(file: file, at: origin?.name, key: nameKey, reason: reason)
        case PluginError.badSettings(let plugin, let detail):
            return ConfigError(
                file: file, at: origin?.settings ?? origin?.entry, key: key + ".settings",
                reason: "settings of '\(plugin)' do not fit it: \(detail); fix them as the plugin's documentation says")
        default:
            return ConfigError(
                file: file, at: origin?.settings ?? origin?.entry, key: key + ".settings",
                reason: "'\(name)' refused its settings: \(error); fix them as the plugin's documentation says")
        }
    }
}

/// Walks a composed YAML tree into a `NodeConfig`, stopping at the first problem with a `ConfigError` that
/// says where it is and what to do.
private struct ConfigReader {
    typealias Position = ConfigError.Position

    let file: String
    /// What relative file paths are relative to; nil: the current directory.
    let directory: String?

    // MARK: Sections

    func config(from root: Yams.Node) throws(ConfigError) -> NodeConfig {
        let top = try fields(
            of: root, path: "", at: Position(line: 1, column: 1),
            allowed: ["node", "bootstrap", "transports", "overlords", "linking", "liveness", "limits",
                      "security", "virtual_network"])

        let nodeSection = try top.required(
            "node", reader: self, hint: "add a 'node:' section with at least 'name:', e.g. 'node: { name: alpha }'")
        let node = try fields(of: nodeSection, field: top.field("node"), allowed: ["name", "address"])
        let name = try nodeName(node)
        let address = try nodeAddress(node)

        let bootstrap = try bootstrapURIs(top)
        let transports = try pluginEntries(top, section: "transports", nameKey: "scheme", kind: "transport")
        let overlords = try pluginEntries(top, section: "overlords", nameKey: "name", kind: "overlord")

        var config = NodeConfig(name: name, address: address, transports: transports, overlords: overlords,
                                bootstrap: bootstrap)
        if let section = top.value("linking") {
            let linking = try fields(of: section, field: top.field("linking"),
                                     allowed: ["reply_timeout_ms", "attempts_per_uri", "retry_backoff_ms",
                                               "direct_retry_s", "punch_ttl", "punch_hold_ms"])
            if let ms = try integer(linking, "reply_timeout_ms", in: 1...600_000, unit: "milliseconds") {
                config.linking.replyTimeout = .milliseconds(ms)
            }
            if let count = try integer(linking, "attempts_per_uri", in: 1...20, unit: "tries") {
                config.linking.attemptsPerURI = count
            }
            if let ms = try integer(linking, "retry_backoff_ms", in: 0...600_000, unit: "milliseconds") {
                config.linking.retryBackoff = .milliseconds(ms)
            }
            if let seconds = try integer(linking, "direct_retry_s", in: 1...86_400, unit: "seconds") {
                config.linking.directRetryInterval = .seconds(seconds)
            }
            if let ttl = try integer(linking, "punch_ttl", in: 0...255, unit: "IP hops") {
                config.linking.punchTTL = UInt8(ttl)
            }
            if let ms = try integer(linking, "punch_hold_ms", in: 0...60_000, unit: "milliseconds") {
                config.linking.punchHold = .milliseconds(ms)
            }
        }
        if let section = top.value("liveness") {
            try readLiveness(section, field: top.field("liveness"), into: &config.liveness)
        }
        if let section = top.value("limits") {
            let limits = try fields(of: section, field: top.field("limits"),
                                    allowed: ["max_connections", "shared_neighbours_per_side"])
            if let count = try integer(limits, "max_connections", in: 4...65_535, unit: "connections") {
                config.maximumConnections = count
            }
            if let count = try integer(limits, "shared_neighbours_per_side", in: 1...8, unit: "neighbours") {
                config.sharedNeighboursPerSide = count
            }
        }
        config.security = try security(top, node: node, configuredAddress: address)
        if let field = top.field("virtual_network"), !ConfigReader.isNull(field.value) {
            config.virtualNetwork = try virtualNetwork(field, security: config.security)
        }
        return config
    }

    private func nodeName(_ node: Fields) throws(ConfigError) -> String {
        let field = try node.requiredField("name", reader: self, hint: "give the node a name, e.g. 'name: alpha'")
        let name = try string(field)
        let length = name.count
        guard length >= 1 else {
            throw error(at: field, "the node name is empty; give it 1 to 64 characters, e.g. 'name: alpha'")
        }
        guard length <= 64 else {
            throw error(at: field, "the node name is \(length) characters long; shorten it to at most 64")
        }
        guard !name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw error(at: field, "the node name contains a control character (tab, newline, ...); remove it")
        }
        return name
    }

    private func nodeAddress(_ node: Fields) throws(ConfigError) -> Address? {
        guard let field = node.field("address"), !ConfigReader.isNull(field.value) else { return nil }
        let text = try string(field)
        guard let address = Address(hex: text) else {
            throw error(
                at: field,
                "'\(text)' is not a ring address (it has \(text.count) characters): write exactly 40 hex digits "
                    + "(0-9, a-f, no '0x'), or leave 'address' out to derive it from the node name")
        }
        return address
    }

    private func bootstrapURIs(_ top: Fields) throws(ConfigError) -> [TransportURI] {
        guard let field = top.field("bootstrap"), !ConfigReader.isNull(field.value) else { return [] }
        guard case .sequence(let items) = field.value else {
            throw typeError(at: field, expected: "a list of transport URIs",
                            hint: "write each URI on its own line as '- udp://198.18.0.1:4000'")
        }
        var uris: [TransportURI] = []
        for (index, item) in items.enumerated() {
            let element = Field(name: "\(index)", path: "bootstrap[\(index)]", key: item, value: item)
            let text = try string(element)
            do {
                uris.append(try TransportURI(text))
            } catch .empty {
                throw self.error(at: element,
                                 "\(TransportURI.ParseError.empty); write scheme://location or remove the entry")
            } catch {
                throw self.error(at: element, error.description)
            }
        }
        return uris
    }

    /// `transports` (required, at least one) or `overlords` (optional, defaulting to the usual set).
    private func pluginEntries(_ top: Fields, section: String, nameKey: String,
                               kind: String) throws(ConfigError) -> [NodeConfig.PluginEntry] {
        let example = kind == "transport" ? "'- scheme: udp'" : "'- name: leaf'"
        let items: [Yams.Node]
        if kind == "transport" {
            let field = try top.requiredField(
                section, reader: self, hint: "add a 'transports:' list with at least one entry, e.g. \(example)")
            guard case .sequence(let list) = field.value else {
                throw typeError(at: field, expected: "a list of transports",
                                hint: "write each as \(example), on its own line")
            }
            guard !list.isEmpty else {
                throw error(at: field, "the list is empty; configure at least one transport, e.g. \(example)")
            }
            items = Array(list)
        } else {
            guard let field = top.field(section), !ConfigReader.isNull(field.value) else {
                return NodeConfig.defaultOverlordNames.map { NodeConfig.PluginEntry(name: $0) }
            }
            guard case .sequence(let list) = field.value else {
                throw typeError(at: field, expected: "a list of overlords",
                                hint: "write each as \(example), on its own line")
            }
            items = Array(list)
        }

        var entries: [NodeConfig.PluginEntry] = []
        var seen: [String: (line: Int?, path: String)] = [:]
        for (index, item) in items.enumerated() {
            let path = "\(section)[\(index)]"
            let element = Field(name: "\(index)", path: path, key: item, value: item)
            guard case .mapping = item else {
                throw typeError(at: element, expected: "a mapping with '\(nameKey)' and optional 'settings'",
                                hint: "write it as \(example)")
            }
            let entry = try fields(of: item, field: element, allowed: [nameKey, "settings"])
            let nameField = try entry.requiredField(nameKey, reader: self, hint: "add it, e.g. \(example)")
            let name = try string(nameField)
            if kind == "transport" {
                guard (try? TransportURI(name + "://x"))?.scheme == name else {
                    throw error(at: nameField, TransportURI.ParseError.badScheme(name).description)
                }
            } else {
                guard ConnectionType.isValid(name) else {
                    throw error(at: nameField, "'\(name)' is not a valid overlord name: use 1 to 64 lowercase "
                                    + "letters, digits, '.', '_' or '-'")
                }
            }
            if let first = seen[name] {
                let place = first.line.map { "at line \($0) (\(first.path))" } ?? "as \(first.path)"
                throw error(at: nameField, "\(kind) '\(name)' is already configured \(place); a node runs each "
                                + "\(kind) once: merge the two entries' settings into one and delete the other")
            }
            seen[name] = (nameField.position?.line, path)

            var settings = PluginSettings.empty
            var settingsPosition: Position?
            if let field = entry.field("settings"), !ConfigReader.isNull(field.value) {
                guard case .mapping = field.value else {
                    throw typeError(at: field, expected: "a mapping of the \(kind)'s settings",
                                    hint: "write them as 'settings: { key: value }', or leave 'settings' out")
                }
                settings = PluginSettings(node: field.value)
                settingsPosition = field.position
            }
            let origin = NodeConfig.PluginEntry.Origin(
                file: file, key: path, entry: ConfigReader.position(of: item) ?? Position(line: 1, column: 1),
                name: nameField.position ?? Position(line: 1, column: 1), settings: settingsPosition)
            entries.append(NodeConfig.PluginEntry(name: name, settings: settings, origin: origin))
        }
        return entries
    }

    private func readLiveness(_ section: Yams.Node, field: Field?,
                              into liveness: inout NodeConfig.Liveness) throws(ConfigError) {
        let values = try fields(of: section, field: field, allowed: ["ping_interval_s", "dead_after_s"])
        let ping = try integer(values, "ping_interval_s", in: 1...86_400, unit: "seconds")
        let dead = try integer(values, "dead_after_s", in: 2...604_800, unit: "seconds")
        if let ping { liveness.pingInterval = .seconds(ping) }
        if let dead { liveness.deadAfter = .seconds(dead) }
        guard liveness.deadAfter > liveness.pingInterval else {
            let pingSeconds = liveness.pingInterval.components.seconds
            let deadSeconds = liveness.deadAfter.components.seconds
            let pingText = ping == nil ? "the default \(pingSeconds)" : "\(pingSeconds)"
            let deadText = dead == nil ? "the default \(deadSeconds)" : "\(deadSeconds)"
            // Point at the key the user wrote: dead_after_s if given, else ping_interval_s.
            let at = values.field(dead != nil ? "dead_after_s" : "ping_interval_s")
            let reason = "dead_after_s (\(deadText)) must exceed ping_interval_s (\(pingText)), or live "
                + "connections are declared dead before they are pinged; set dead_after_s to at least "
                + "twice ping_interval_s, e.g. \(pingSeconds * 2)"
            throw ConfigError(file: file, at: at?.position, key: at?.path ?? "liveness", reason: reason)
        }
    }

    // MARK: Security

    private static let securityKeys = ["insecure", "ca", "certificate", "key", "revoked", "rekey_after_s"]

    /// The `security` section: `insecure: true`, or the node's credential files, read and checked here so
    /// that a node never starts with credentials that cannot work.
    private func security(_ top: Fields, node: Fields,
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

    // MARK: Virtual network

    /// The `virtual_network` section: the TUN device's name, the network it carries, its MTU, offloads. The node's IP
    /// is its certificate's first virtual IP, so the section needs a secured node with one.
    private func virtualNetwork(_ sectionField: Field,
                                security: NodeConfig.Security) throws(ConfigError) -> VirtualNetwork.Settings {
        let section = try fields(of: sectionField.value, field: sectionField, allowed: ["device", "prefix", "mtu", "offload"])
        var settings = VirtualNetwork.Settings()
        if let field = section.field("device"), !ConfigReader.isNull(field.value) {
            let name = try string(field)
            let allowed = name.utf8.allSatisfy { byte in
                (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                    || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || [UInt8(ascii: "-"), UInt8(ascii: "_")].contains(byte)
            }
            guard (1...15).contains(name.utf8.count), allowed else {
                throw error(at: field, "'\(name)' is not a usable device name: give 1 to 15 letters, digits, '-' or "
                                + "'_' (Linux interface names), e.g. 'device: wow0'")
            }
            settings.deviceName = name
        }
        if let field = section.field("prefix"), !ConfigReader.isNull(field.value) {
            let text = try string(field)
            guard let prefix = VirtualPrefix(text) else {
                throw error(at: field, "'\(text)' is not an IPv4 network: write address/length with the host bits "
                                + "zero, e.g. 'prefix: 100.64.0.0/10'")
            }
            settings.prefix = prefix
        }
        if let mtu = try integer(section, "mtu", in: VirtualNetwork.mtuRange, unit: "bytes") {
            settings.mtu = mtu
        }
        if let field = section.field("offload"), !ConfigReader.isNull(field.value) {
            settings.offload = try boolean(field)
        }
        guard case .secured(let secured) = security else {
            throw error(at: sectionField, VirtualNetworkError.notSecured.description)
        }
        let certificate = secured.credentials.certificate
        guard let ip = certificate.virtualIPs.first else {
            throw error(at: sectionField, VirtualNetworkError.noVirtualIP(certificate: certificate.name).description)
        }
        guard settings.prefix.contains(ip) else {
            let at = section.field("prefix") ?? sectionField
            throw error(at: at, VirtualNetworkError.outsidePrefix(ip: ip, prefix: settings.prefix).description)
        }
        return settings
    }

    /// Reads the credential file named under `field` as `kind` and decodes it.
    private func credential<T>(_ field: Field, as kind: CredentialFile.Kind, what: String,
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
    private func path(_ field: Field) throws(ConfigError) -> String {
        let text = try string(field)
        guard !text.isEmpty else { throw error(at: field, "the path is empty; name a file") }
        if text.hasPrefix("/") { return text }
        let base = URL(fileURLWithPath: directory ?? FileManager.default.currentDirectoryPath, isDirectory: true)
        return URL(fileURLWithPath: text, relativeTo: base).standardizedFileURL.path
    }

    // MARK: Mappings and fields

    /// One key of a mapping (or one element of a list) and its value.
    struct Field {
        let name: String
        /// The dotted path, e.g. `overlords[1].name`.
        let path: String
        let key: Yams.Node
        let value: Yams.Node

        /// Where an error about the value points: the value, or its key when the value is empty (an empty
        /// scalar's mark lies past the end of the line).
        var position: Position? {
            ConfigReader.isNull(value) ? ConfigReader.position(of: key) : ConfigReader.position(of: value)
        }
    }

    /// A mapping's fields, its keys already checked against the ones allowed there.
    struct Fields {
        let path: String
        /// Where "missing key" errors point: the key the mapping sits under.
        let position: Position?
        let fields: [String: Field]

        func field(_ name: String) -> Field? { fields[name] }

        /// The value under `name`, nil when absent or empty (`key:` with nothing, `~`, `null`).
        func value(_ name: String) -> Yams.Node? {
            guard let field = fields[name], !ConfigReader.isNull(field.value) else { return nil }
            return field.value
        }

        func requiredField(_ name: String, reader: ConfigReader, hint: String) throws(ConfigError) -> Field {
            guard let field = fields[name] else {
                throw ConfigError(file: reader.file, at: position, key: ConfigReader.join(path, name),
                                  reason: "missing required key '\(name)'; \(hint)")
            }
            guard !ConfigReader.isNull(field.value) else {
                throw ConfigError(file: reader.file, at: field.position, key: field.path,
                                  reason: "'\(name)' has no value; \(hint)")
            }
            return field
        }

        func required(_ name: String, reader: ConfigReader, hint: String) throws(ConfigError) -> Yams.Node {
            try requiredField(name, reader: reader, hint: hint).value
        }
    }

    private func fields(of node: Yams.Node, field: Field?, allowed: [String]) throws(ConfigError) -> Fields {
        // "Missing key" errors point at the key the mapping sits under (for a list element, the element).
        try fields(of: node, path: field?.path ?? "", at: field.flatMap { ConfigReader.position(of: $0.key) },
                   allowed: allowed)
    }

    private func fields(of node: Yams.Node, path: String, at position: Position?,
                        allowed: [String]) throws(ConfigError) -> Fields {
        guard case .mapping(let mapping) = node else {
            let keys = allowed.map { "'\($0)'" }.joined(separator: ", ")
            throw ConfigError(
                file: file, at: ConfigReader.position(of: node) ?? position, key: path,
                reason: "expected a mapping with keys \(keys), got \(ConfigReader.describe(node))")
        }
        var fields: [String: Field] = [:]
        for (key, value) in mapping {
            guard case .scalar(let scalar) = key else {
                throw ConfigError(file: file, at: ConfigReader.position(of: key), key: path,
                                  reason: "a key must be a plain name, got \(ConfigReader.describe(key))")
            }
            let name = scalar.string
            guard allowed.contains(name) else {
                var reason = "unknown key '\(name)'"
                if let guess = ConfigReader.closest(to: name, among: allowed) { reason += " (did you mean '\(guess)'?)" }
                reason += "; allowed \(path.isEmpty ? "at the top level" : "in '\(path)'"): "
                    + allowed.joined(separator: ", ")
                throw ConfigError(file: file, at: ConfigReader.position(of: key),
                                  key: ConfigReader.join(path, name), reason: reason)
            }
            fields[name] = Field(name: name, path: ConfigReader.join(path, name), key: key, value: value)
        }
        return Fields(path: path, position: position, fields: fields)
    }

    // MARK: Scalars

    private func string(_ field: Field) throws(ConfigError) -> String {
        guard case .scalar(let scalar) = field.value else {
            throw typeError(at: field, expected: "a string", hint: nil)
        }
        return scalar.string
    }

    private func boolean(_ field: Field) throws(ConfigError) -> Bool {
        guard case .scalar(let scalar) = field.value, ["true", "false"].contains(scalar.string) else {
            throw typeError(at: field, expected: "true or false", hint: nil)
        }
        return scalar.string == "true"
    }

    /// The integer under `name`, nil when the key is absent or empty.
    private func integer(_ fields: Fields, _ name: String, in range: ClosedRange<Int>,
                         unit: String) throws(ConfigError) -> Int? {
        guard let field = fields.field(name), !ConfigReader.isNull(field.value) else { return nil }
        guard case .scalar(let scalar) = field.value,
              let value = Int(scalar.string.trimmingCharacters(in: .whitespaces)) else {
            throw typeError(at: field, expected: "an integer (\(unit))",
                            hint: "write a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        guard range.contains(value) else {
            throw error(at: field, "\(value) is out of range: \(name) must be from \(range.lowerBound) to "
                            + "\(range.upperBound) (\(unit))")
        }
        return value
    }

    // MARK: Errors

    private func error(at field: Field, _ reason: String) -> ConfigError {
        ConfigError(file: file, at: field.position, key: field.path, reason: reason)
    }

    private func typeError(at field: Field, expected: String, hint: String?) -> ConfigError {
        var reason = "expected \(expected), got \(ConfigReader.describe(field.value))"
        if let hint { reason += "; \(hint)" }
        return error(at: field, reason)
    }

    /// A Yams error as a `ConfigError` at the line libyaml reports.
    static func syntaxError(_ error: any Error, file: String, yaml: String) -> ConfigError {
        func syntax(_ problem: String, _ context: YamlError.Context?, _ mark: Mark) -> ConfigError {
            var reason = "invalid YAML: \(problem)"
            if let context { reason += " (\(context.text) at line \(context.mark.line))" }
            let lines = yaml.split(separator: "\n", omittingEmptySubsequences: false)
            if mark.line >= 1, mark.line <= lines.count, lines[mark.line - 1].contains("\t") {
                reason += "; YAML indents with spaces, not tabs: replace the tabs on this line"
            } else if problem.contains("another document") {
                reason += "; a config is one YAML document: remove the second '---' and what follows it"
            } else if problem.contains("undefined alias") {
                reason += "; define the anchor ('&name') before using '*name', or quote a value that starts with '*'"
            } else {
                reason += "; fix the syntax here: check the indentation and closing brackets, and quote values "
                    + "that contain ': ' or start with '{', '[', '*', '&', '!' or '#'"
            }
            return ConfigError(file: file, line: mark.line, column: mark.column, key: "", reason: reason)
        }
        guard let yamlError = error as? YamlError else {
            return ConfigError(file: file, line: nil, column: nil, key: "", reason: "invalid YAML: \(error)")
        }
        switch yamlError {
        case .scanner(let context, let problem, let mark, _),
             .parser(let context, let problem, let mark, _),
             .composer(let context, let problem, let mark, _):
            return syntax(problem, context, mark)
        case .duplicatedKeysInMapping(let duplicates, let context):
            let names = duplicates.map { "'\($0)'" }.joined(separator: ", ")
            return ConfigError(
                file: file, line: context.mark.line, column: context.mark.column, key: duplicates.first ?? "",
                reason: "key \(names) appears more than once in the same mapping; keep one and delete the others")
        case .reader(let problem, let offset, _, _):
            var position: Position?
            if let offset { position = ConfigReader.position(ofCharacterOffset: offset, in: yaml) }
            return ConfigError(file: file, at: position, key: "",
                               reason: "the text cannot be read as YAML: \(problem); remove the control character here")
        default:
            return ConfigError(file: file, line: nil, column: nil, key: "", reason: "invalid YAML: \(yamlError)")
        }
    }

    // MARK: Helpers

    static func join(_ path: String, _ name: String) -> String { path.isEmpty ? name : path + "." + name }

    static func position(of node: Yams.Node) -> Position? {
        node.mark.map { Position(line: $0.line, column: $0.column) }
    }

    static func position(ofCharacterOffset offset: Int, in text: String) -> Position {
        var line = 1
        var column = 1
        for character in text.prefix(offset) {
            if character == "\n" || character == "\r\n" {
                line += 1
                column = 1
            } else {
                column += 1
            }
        }
        return Position(line: line, column: column)
    }

    /// Whether the node is YAML's null: an empty value, `~` or `null` (unquoted).
    static func isNull(_ node: Yams.Node) -> Bool {
        guard case .scalar = node else { return false }
        return node.tag.rawValue == Tag.Name.null.rawValue
    }

    /// How a value reads in an error: `'abc'`, `a list`, `a mapping`.
    static func describe(_ node: Yams.Node) -> String {
        switch node {
        case .scalar(let scalar):
            return isNull(node) ? "nothing" : "'\(scalar.string)'"
        case .sequence: return "a list"
        case .mapping: return "a mapping"
        case .alias: return "an alias"
        }
    }

    /// The allowed name nearest to a misspelt one, when it is near enough to be the likely intent.
    static func closest(to name: String, among candidates: [String]) -> String? {
        let scored = candidates.map { ($0, editDistance(name.lowercased(), $0)) }
        guard let best = scored.min(by: { $0.1 < $1.1 }) else { return nil }
        return best.1 <= max(1, min(3, best.0.count / 3)) ? best.0 : nil
    }

    private static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a.unicodeScalars)
        let b = Array(b.unicodeScalars)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                current[j] = Swift.min(previous[j] + 1, current[j - 1] + 1,
                                       previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }
}
