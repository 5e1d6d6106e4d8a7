import Foundation
import Yams

/// Walks a composed YAML tree into a `NodeConfig`, stopping at the first problem with a `ConfigError` that
/// says where it is and what to do.
struct ConfigReader {
    typealias Position = ConfigError.Position

    let file: String
    /// What relative file paths are relative to; nil: the current directory.
    let directory: String?
    /// The overlords a node runs when the config has no `overlords` section.
    let defaultOverlords: [String]

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

        let (bootstrap, bootstrapKeys) = try bootstrapURIs(top)
        let transports = try pluginEntries(top, section: "transports", nameKey: "scheme", kind: "transport")
        let overlords = try pluginEntries(top, section: "overlords", nameKey: "name", kind: "overlord")

        var config = NodeConfig(name: name, address: address, transports: transports, overlords: overlords,
                                bootstrap: bootstrap)
        config.bootstrapHandshakeKeys = bootstrapKeys
        if let section = top.value("linking") {
            let linking = try fields(of: section, field: top.field("linking"),
                                     allowed: ["reply_timeout_ms", "attempts_per_uri", "retry_backoff_ms",
                                               "race_delay_ms", "relay_after_ms", "direct_retry_s", "punch_ttl",
                                               "punch_hold_ms"])
            if let ms = try integer(linking, "reply_timeout_ms", in: 1...600_000, unit: "milliseconds") {
                config.linking.replyTimeout = .milliseconds(ms)
            }
            if let count = try integer(linking, "attempts_per_uri", in: 1...20, unit: "tries") {
                config.linking.attemptsPerURI = count
            }
            if let ms = try integer(linking, "retry_backoff_ms", in: 0...600_000, unit: "milliseconds") {
                config.linking.retryBackoff = .milliseconds(ms)
            }
            if let ms = try integer(linking, "race_delay_ms", in: 0...60_000, unit: "milliseconds") {
                config.linking.raceDelay = .milliseconds(ms)
            }
            if let ms = try integer(linking, "relay_after_ms", in: 0...600_000, unit: "milliseconds") {
                config.linking.relayAfter = .milliseconds(ms)
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

    func nodeName(_ node: Fields) throws(ConfigError) -> String {
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

    func nodeAddress(_ node: Fields) throws(ConfigError) -> Address? {
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

    /// `bootstrap`: each entry a transport URI, or a mapping `{uri, handshake_key}` that names the node's handshake
    /// key too (`wow keygen` and `wow status` print it): the first init to it then carries the link request.
    func bootstrapURIs(_ top: Fields) throws(ConfigError) -> (uris: [TransportURI], keys: [TransportURI: [UInt8]]) {
        guard let field = top.field("bootstrap"), !ConfigReader.isNull(field.value) else { return ([], [:]) }
        guard case .sequence(let items) = field.value else {
            throw typeError(at: field, expected: "a list of transport URIs",
                            hint: "write each URI on its own line as '- udp://198.18.0.1:4000'")
        }
        var uris: [TransportURI] = []
        var keys: [TransportURI: [UInt8]] = [:]
        for (index, item) in items.enumerated() {
            var element = Field(name: "\(index)", path: "bootstrap[\(index)]", key: item, value: item)
            var key: [UInt8]?
            if case .mapping = item {
                let entry = try fields(of: item, field: element, allowed: ["uri", "handshake_key"])
                element = try entry.requiredField("uri", reader: self,
                                                  hint: "give the node's URI as 'uri: udp://198.18.0.1:4000'")
                if let keyField = entry.field("handshake_key") {
                    guard let bytes = PublicKeyText.decode(try string(keyField)) else {
                        throw self.error(at: keyField, "not a handshake key: expected 64 hex digits (as 'wow keygen' and 'wow status' print it)")
                    }
                    key = bytes
                }
            }
            let text = try string(element)
            let uri: TransportURI
            do {
                uri = try TransportURI(text)
            } catch .empty {
                throw self.error(at: element,
                                 "\(TransportURI.ParseError.empty); write scheme://location or remove the entry")
            } catch {
                throw self.error(at: element, error.description)
            }
            uris.append(uri)
            if let key { keys[uri] = key }
        }
        return (uris, keys)
    }

    /// `transports` (required, at least one) or `overlords` (optional, defaulting to the usual set).
    func pluginEntries(_ top: Fields, section: String, nameKey: String,
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
                return defaultOverlords.map { NodeConfig.PluginEntry(name: $0) }
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

    func readLiveness(_ section: Yams.Node, field: Field?,
                      into liveness: inout NodeConfig.Liveness) throws(ConfigError) {
        let values = try fields(of: section, field: field, allowed: ["ping_interval_s", "dead_after_s", "failover_after_ms"])
        let ping = try integer(values, "ping_interval_s", in: 1...86_400, unit: "seconds")
        let dead = try integer(values, "dead_after_s", in: 2...604_800, unit: "seconds")
        if let ping { liveness.pingInterval = .seconds(ping) }
        if let dead { liveness.deadAfter = .seconds(dead) }
        if let failover = try integer(values, "failover_after_ms", in: 0...600_000, unit: "milliseconds") {
            liveness.failoverAfter = .milliseconds(failover)
        }
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
}
