import Transports
import WOWKit

/// What network each simulated node sits behind: its NAT, drawn from the options' mix, and the transports an
/// operator would configure behind it.
extension OverlaySimulation {
    /// What a node behind `nat` runs, as an operator would configure it: UDP (`memory`) unless UDP is
    /// blocked; a stream transport (`memory-stream`, think TLS on 443) on public hosts, which accept it, and
    /// on UDP-blocked ones, which have nothing else; and `relay` last, for peers nothing direct reaches.
    static func transports(for nat: NATBehaviour) -> [NodeConfig.PluginEntry] {
        switch nat {
        case .open:
            return [.init(name: MemoryTransport.scheme), .init(name: MemoryTransport.streamScheme), .init(name: RelayTransport.scheme)]
        case .udpBlocked:
            return [.init(name: MemoryTransport.streamScheme), .init(name: RelayTransport.scheme)]
        case .fullCone, .restricted, .portRestricted, .symmetric:
            return [.init(name: MemoryTransport.scheme), .init(name: RelayTransport.scheme)]
        }
    }

    /// Whether hosts behind these two NATs can reach each other with some direct transport in this model: UDP
    /// hole punching where the NATs allow it, or a stream to an open host.
    public static func canConnectDirectly(_ a: NATBehaviour, _ b: NATBehaviour) -> Bool {
        if a == .open || b == .open { return true }
        if a == .udpBlocked || b == .udpBlocked { return false }
        if a == .fullCone || b == .fullCone { return true }
        switch (a, b) {
        case (.symmetric, .symmetric), (.symmetric, .portRestricted), (.portRestricted, .symmetric): return false
        default: return true
        }
    }

    /// How old a relayed connection between two nodes that could connect directly must be to count as needless:
    /// its first direct retry comes 5 s after it was made (docs/transports.md, "Back to direct"), so a younger one
    /// may still be on its way to a direct edge.
    public static let needlessRelayAge: Duration = .seconds(10)

    /// Connections of live nodes, each counted once: how many are direct, how many relayed, and how many of
    /// those relayed ones join two nodes that could have connected directly and are older than
    /// `needlessRelayAge`.
    public func connectionKinds() -> (direct: Int, relayed: Int, needlessRelays: Int) {
        var direct = 0
        var relayed = 0
        var needless = 0
        for n in liveNodes {
            for c in n.node.table.connections where n.node.address < c.address {
                guard c.transport == RelayTransport.scheme else { direct += 1; continue }
                relayed += 1
                if let peer = byAddress[c.address], Self.canConnectDirectly(n.nat, peer.nat),
                   scheduler.now - c.createdAt >= Self.needlessRelayAge { needless += 1 }
            }
        }
        return (direct, relayed, needless)
    }

    /// A NAT for a new node, drawn from the options' mix (the rest public).
    func drawNAT() -> NATBehaviour {
        var draw = random.unit()
        for behaviour in NATBehaviour.allCases where behaviour != .open {
            let share = options.natMix[behaviour] ?? 0
            if draw < share { return behaviour }
            draw -= share
        }
        return .open
    }
}
