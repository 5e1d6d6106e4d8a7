import Plugins
import Transports
import WOWKit

/// Node config files: `NodeConfig(yaml:)` (YAML syntax through Yams and libyaml, every section and key, the
/// security section's credential files), `validate` against the shipped transports and overlords (which
/// builds each overlord from its settings), and each shipped transport's settings decoded as the node decodes
/// them when it makes its listeners.
///
/// Relative paths in `security` resolve in a directory of genuine credential files (`FuzzFixtures`). Inputs
/// that could name other files are skipped: a backslash (YAML escapes), or a `/` that does not start `//`,
/// a digit or `[` (URIs and prefixes keep theirs), so that no input reads a device or a FIFO and hangs.
///
/// Checks: parsing never traps; a refusal names the file and, when it gives a place, a line inside the text
/// and a column from 1.
enum ConfigTarget: FuzzTarget {
    static let name = "config"
    static let summary = "NodeConfig(yaml:) + validate + transport settings; errors name a place in the file"

    static let registries: (transports: TransportRegistry, overlords: OverlordRegistry) = {
        var transports = TransportRegistry()
        TransportCatalog.registerTransports(in: &transports)
        var overlords = OverlordRegistry()
        PluginCatalog.registerOverlords(in: &overlords)
        return (transports, overlords)
    }()

    /// Whether the input could name a file outside the fixture directory (see above).
    static func namesOtherFiles(_ data: [UInt8]) -> Bool {
        for (index, byte) in data.enumerated() {
            if byte == UInt8(ascii: "\\") { return true }
            guard byte == UInt8(ascii: "/") else { continue }
            let next = index + 1 < data.count ? data[index + 1] : 0
            let previous = index > 0 ? data[index - 1] : 0
            let allowed = next == UInt8(ascii: "/") || previous == UInt8(ascii: "/") || next == UInt8(ascii: "[")
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(next)
            if !allowed { return true }
        }
        return false
    }

    static func run(_ data: [UInt8]) {
        guard !namesOtherFiles(data) else { return }
        let yaml = String(decoding: data, as: UTF8.self)
        let config: NodeConfig
        do {
            config = try NodeConfig(yaml: yaml, file: "fuzz.yml", directory: FuzzFixtures.credentialDirectory,
                                    defaultOverlords: PluginCatalog.defaultOverlordNames)
        } catch {
            return checkPlace(error, yaml)
        }
        do {
            try config.validate(transports: registries.transports, overlords: registries.overlords)
        } catch {
            return checkPlace(error, yaml)
        }
        for entry in config.transports {
            do {
                switch entry.name {
                case UDPTransport.scheme: _ = try entry.settings.decode(UDPTransport.Settings.self, for: entry.name)
                case TCPTransport.scheme: _ = try entry.settings.decode(TCPTransport.Settings.self, for: entry.name)
                case TLSTransport.scheme: _ = try entry.settings.decode(TLSTransport.Settings.self, for: entry.name)
                case RelayTransport.scheme: _ = try entry.settings.decode(RelayTransport.Settings.self, for: entry.name)
                default: break
                }
            } catch {
                checkPlace(entry.configError(for: error), yaml)
            }
        }
    }

    static func checkPlace(_ error: ConfigError, _ yaml: String) {
        require(error.file == "fuzz.yml" && !error.reason.isEmpty, "an error without its file or reason: \(error)")
        guard let line = error.line else { return }
        // libyaml breaks lines at \n, \r, \r\n, NEL, LS and PS; counting each of them bounds the line count.
        let breaks = yaml.unicodeScalars.filter { ["\n", "\r", "\u{85}", "\u{2028}", "\u{2029}"].contains($0) }.count
        require(line >= 1 && line <= breaks + 1, "error at line \(line) of a text with \(breaks) line breaks: \(error)")
        require((error.column ?? 1) >= 1, "error at column \(String(describing: error.column)): \(error)")
    }

    static func seeds() -> [(key: String, bytes: [UInt8])] {
        let full = """
            node:
              name: alice
              address: 00112233445566778899aabbccddeeff00112233
            bootstrap:
              - udp://198.18.0.1:4000
              - tcp://[2001:db8::1]:4001
            transports:
              - scheme: udp
                settings: { listen: "0.0.0.0:4000" }
              - scheme: tcp
                settings: { listen: "[::]:4001", advertise: ["tcp://198.18.0.1:4001"], connect_timeout_ms: 3000 }
              - scheme: tls
                settings: { listen: "0.0.0.0:443" }
              - scheme: relay
            overlords:
              - name: leaf
              - name: structured.near
                settings: { per_side: 2 }
              - name: structured.far
              - name: structured.shortcut
                settings: { min_packets: 2, idle_timeout_s: 60, max_shortcuts: 32 }
            linking:
              reply_timeout_ms: 1000
              attempts_per_uri: 3
              retry_backoff_ms: 250
              race_delay_ms: 250
              direct_retry_s: 30
              punch_ttl: 2
              punch_hold_ms: 500
            liveness:
              ping_interval_s: 15
              dead_after_s: 30
            limits:
              max_connections: 256
              shared_neighbours_per_side: 3

            """
        let secured = """
            node: { name: alice }
            transports: [ { scheme: udp } ]
            security:
              ca: ca.crt
              certificate: alice.crt
              key: alice.key
              revoked: revoked.txt
              rekey_after_s: 120
            virtual_network:
              device: wow0
              prefix: 100.64.0.0/10
              ipv6_prefix: fd77:6f77::/48
              mtu: 1260
              offload: true

            """
        return [
            ("full", Array(full.utf8)),
            ("secured", Array(secured.utf8)),
            ("smallest", Array("node:\n  name: alpha\ntransports:\n  - scheme: udp\n".utf8)),
            ("insecure-flow", Array("node: { name: b }\nsecurity: { insecure: true }\ntransports: [ { scheme: tcp, settings: ~ } ]\noverlords: []\n".utf8)),
            ("key-mismatch", Array("node: { name: a }\ntransports: [ { scheme: udp } ]\nsecurity: { ca: ca.crt, certificate: bob.crt, key: alice.key }\n".utf8)),
            ("impostor", Array("node: { name: a }\ntransports: [ { scheme: udp } ]\nsecurity: { ca: ca.crt, certificate: mallory.crt, key: alice.key }\n".utf8)),
            ("anchors", Array("base: &b { scheme: udp }\nnode: { name: a }\ntransports: [ *b ]\n".utf8)),
            ("typo", Array("node: { name: a }\ntransport: [ { scheme: udp } ]\nlinking:\n\treply_timeout_ms: 5\n".utf8)),
            ("duplicate", Array("node: { name: a }\nnode: { name: b }\n".utf8)),
        ]
    }
}
