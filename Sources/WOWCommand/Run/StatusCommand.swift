import ArgumentParser
import Foundation
import Plugins
import WOWKit

/// `wow status`: asks a running node what it is connected to.
struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show a running node's connections and learned URIs (asks it over its control socket)."
    )

    @OptionGroup var node: NodeControlOptions

    @Flag(help: "Print the node's JSON status.")
    var json = false

    func run() throws {
        let path = node.path
        let answer: Data
        do {
            answer = try ControlClient.request("status", path: path)
        } catch {
            throw CommandFailure(description: "\(error)")
        }
        if let object = try? JSONSerialization.jsonObject(with: answer) as? [String: Any], let error = object["error"] {
            throw CommandFailure(description: "the node answered: \(error)")
        }
        if json {
            print(String(decoding: answer, as: UTF8.self), terminator: "")
            return
        }
        let status: NodeStatus
        do {
            status = try JSONDecoder().decode(NodeStatus.self, from: answer)
        } catch {
            throw CommandFailure(description: "unexpected answer from \(path): \(error)")
        }
        print(Self.render(status))
    }

    /// Connections of `type`, asked for by either side.
    private static func count(_ type: String, in s: NodeStatus) -> Int {
        s.connections.filter { $0.local_types.contains(type) || $0.remote_types.contains(type) }.count
    }

    private static func security(_ s: NodeStatus) -> String {
        guard let security = s.security else { return "security: none (insecure: plaintext, no membership check)" }
        let expires = Date(timeIntervalSince1970: TimeInterval(security.certificate_expires))
        let ips = security.virtual_ips.isEmpty ? "router only" : security.virtual_ips.joined(separator: ", ")
        return "security: network \(security.network), certificate '\(security.certificate_name)' (\(ips)) "
            + "expires \(ISO8601DateFormatter().string(from: expires)); \(security.secure_edges) secure edges, "
            + "\(security.end_to_end_sessions) end-to-end sessions"
            + (security.handshake_key.map { "\nhandshake key: \($0) (in a bootstrap list: - {uri: <URI>, handshake_key: \($0)})" } ?? "")
    }

    /// What a connection is for, in words: `right neighbour`, `far`, `shortcut`, `forwarder`, `leaf`, `carries tunnels`.
    static func roles(of c: NodeStatus.ConnectionStatus, in s: NodeStatus) -> String {
        var roles: [String] = []
        if c.peer == s.left_neighbour { roles.append("left neighbour") }
        if c.peer == s.right_neighbour { roles.append("right neighbour") }
        let types = Set(c.local_types + c.remote_types).map { $0.hasPrefix("structured.") ? String($0.dropFirst(11)) : $0 }
        // A neighbour's `near` says nothing more; a near link that is no neighbour (yet) is worth showing.
        roles += types.filter { roles.isEmpty || $0 != "near" }.sorted()
        if c.carries_tunnels == true { roles.append("carries tunnels") }
        return roles.joined(separator: ", ")
    }

    /// `udp 198.18.0.1:4000 (0.6 ms, 12 s ago), via alpha; left udp 198.18.0.1:4000`: the alternatives without
    /// the words `path` already shows, then the path a failover left; a path the connection was on before with
    /// its round trip there and when the peer was last heard there (once).
    static func otherPaths(of c: NodeStatus.ConnectionStatus) -> String {
        func short(_ path: String, measured: Bool = true) -> String {
            var text = path.hasPrefix("direct ") ? String(path.dropFirst(7)) : path.replacingOccurrences(of: "relayed via", with: "via")
            if measured, let former = c.former_paths?.first(where: { $0.path == path }) {
                let heard = "\(String(format: "%.0f", former.last_heard_s)) s ago"
                text += " (\(former.rtt_ms.map { String(format: "%.1f ms, ", $0) } ?? "")\(heard))"
            }
            return text
        }
        var text = c.alternatives.isEmpty ? "-" : c.alternatives.map { short($0) }.joined(separator: ", ")
        if let left = c.left_path { text += "; left \(short(left, measured: !c.alternatives.contains(left)))" }
        return text
    }

    static func render(_ s: NodeStatus) -> String {
        func f(_ v: Double) -> String { String(format: "%.1f", v) }
        func name(_ address: String?) -> String {
            guard let address else { return "-" }
            return s.connections.first { $0.peer == address }?.peer_name ?? String(address.prefix(12))
        }
        let ips = s.virtual_ips.isEmpty ? "" : " (\(s.virtual_ips.joined(separator: ", ")))"
        var lines = ["node \(s.name)\(ips)  \(s.address)  up \(f(s.uptime_s)) s  ring member: \(s.ring_member ? "yes" : "no")",
                     "reachable at: \(s.uris.joined(separator: ", "))",
                     "NAT: \(s.nat)",
                     "seen by peers at: \(s.observed_uris.isEmpty ? "-" : s.observed_uris.joined(separator: ", "))",
                     "ring neighbours: left \(name(s.left_neighbour)), right \(name(s.right_neighbour))",
                     "far links: \(count(FarOverlord.name, in: s))  shortcuts: \(count(ShortcutOverlord.name, in: s))",
                     security(s),
                     "connections: \(s.connections.count)"]
        let header = ["PEER", "VIRTUAL IP", "ROLE", "PATH", "RTT ms", "LAST HEARD", "DIR", "SWITCHES", "OTHER PATHS"]
        var rows = [header]
        let sorted = s.connections.sorted { ($0.peer_name ?? $0.peer, $0.peer) < ($1.peer_name ?? $1.peer, $1.peer) }
        for c in sorted {
            rows.append([c.peer_name ?? String(c.peer.prefix(12)),
                         c.peer_virtual_ips.isEmpty ? "-" : c.peer_virtual_ips.joined(separator: ","),
                         roles(of: c, in: s),
                         c.path + (c.silent_path == true ? " (silent: over the ring)" : ""),
                         c.rtt_ms.map(f) ?? "-", "\(f(c.silent_s)) s ago", c.inbound ? "in" : "out", "\(c.path_switches)",
                         otherPaths(of: c)])
        }
        let widths = header.indices.map { i in rows.map { $0[i].count }.max() ?? 0 }
        for row in rows {
            lines.append("  " + row.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }
                .joined(separator: "  ").trimmingCharacters(in: .whitespaces))
        }
        lines.append("packets in/out: \(s.packets_in)/\(s.packets_out)  bytes in/out: \(s.bytes_in)/\(s.bytes_out)"
                     + "  failovers: \(s.failovers)  network changes: \(s.network_changes)"
                     + "  around silent paths: \(s.routed_around_silent_paths ?? 0)  timers: \(s.timers)")
        if let vnet = s.virtual_network {
            lines.append("virtual network: \(vnet.device) \(vnet.ip) in \(vnet.prefix), MTU \(vnet.mtu); packets from/to "
                         + "device \(vnet.packets_from_device)/\(vnet.packets_to_device), bytes "
                         + "\(vnet.bytes_from_device)/\(vnet.bytes_to_device), ICMP errors sent \(vnet.icmp_sent); offload "
                         + "\(vnet.offload ? "on" : "off"), super-segments from/to device "
                         + "\(vnet.super_segments_from_device)/\(vnet.super_segments_to_device), device write failures "
                         + "\(vnet.device_write_failures)")
        }
        if !s.drops.isEmpty {
            lines.append("drops: " + s.drops.nameCounts)
        }
        for (scheme, drops) in s.transport_drops.sorted(by: { $0.key < $1.key }) {
            lines.append("\(scheme) drops: " + drops.nameCounts)
        }
        return lines.joined(separator: "\n")
    }
}

extension Dictionary where Key == String, Value == Int {
    /// `name=count` pairs in name order, as `wow status` and `wow sim` print counters by reason.
    var nameCounts: String {
        sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
    }
}
