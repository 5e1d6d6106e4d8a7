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

    @Option(help: "The node's control socket path.")
    var control: String?

    @Option(help: "The node's name, to find its default control socket.")
    var name: String?

    @Flag(help: "Print the node's JSON status.")
    var json = false

    func validate() throws {
        guard (control == nil) != (name == nil) else {
            throw ValidationError("give either --control PATH or --name NODE")
        }
    }

    func run() throws {
        let path = control ?? ControlClient.defaultPath(forNode: name ?? "")
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
    }

    static func render(_ s: NodeStatus) -> String {
        func f(_ v: Double) -> String { String(format: "%.1f", v) }
        var lines = ["node \(s.name) \(s.address)  up \(f(s.uptime_s)) s  ring member: \(s.ring_member ? "yes" : "no")",
                     "reachable at: \(s.uris.joined(separator: ", "))",
                     "seen by peers at: \(s.observed_uris.isEmpty ? "-" : s.observed_uris.joined(separator: ", "))",
                     "ring neighbours: left \(s.left_neighbour.map { String($0.prefix(12)) } ?? "-"), "
                        + "right \(s.right_neighbour.map { String($0.prefix(12)) } ?? "-")",
                     "far links: \(count(FarOverlord.name, in: s))  shortcuts: \(count(ShortcutOverlord.name, in: s))",
                     security(s),
                     "connections: \(s.connections.count)"]
        let header = ["PEER", "TYPES (ours|theirs)", "TRANSPORT", "REMOTE URI", "RTT ms", "AGE s", "DIR", "SWITCHES"]
        var rows = [header]
        for c in s.connections {
            rows.append([String(c.peer.prefix(12)), "\(c.local_types.joined(separator: ","))|\(c.remote_types.joined(separator: ","))",
                         c.transport, c.remote_uri, c.rtt_ms.map(f) ?? "-", f(c.age_s), c.inbound ? "in" : "out",
                         "\(c.path_switches)"])
        }
        let widths = header.indices.map { i in rows.map { $0[i].count }.max() ?? 0 }
        for row in rows {
            lines.append("  " + row.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  "))
        }
        lines.append("packets in/out: \(s.packets_in)/\(s.packets_out)  bytes in/out: \(s.bytes_in)/\(s.bytes_out)"
                     + "  failovers: \(s.failovers)")
        if let vnet = s.virtual_network {
            lines.append("virtual network: \(vnet.device) \(vnet.ip) in \(vnet.prefix), MTU \(vnet.mtu); packets from/to "
                         + "device \(vnet.packets_from_device)/\(vnet.packets_to_device), bytes "
                         + "\(vnet.bytes_from_device)/\(vnet.bytes_to_device), ICMP errors sent \(vnet.icmp_sent); offload "
                         + "\(vnet.offload ? "on" : "off"), super-segments from/to device "
                         + "\(vnet.super_segments_from_device)/\(vnet.super_segments_to_device), device write failures "
                         + "\(vnet.device_write_failures)")
        }
        if !s.drops.isEmpty {
            lines.append("drops: " + s.drops.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))
        }
        return lines.joined(separator: "\n")
    }
}
