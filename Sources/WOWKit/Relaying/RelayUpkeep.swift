/// What a node that tunnels connections through the overlay (the relay transport) keeps up, as a state
/// machine: the direct connections its tunnels leave through (`forwarder`s), and the retries that move a relayed
/// connection to a direct edge once one gets through.
///
/// A node holds one only while it runs a tunnelling transport (an `OverlayTunnelListener`); without one none of
/// this exists. The node asks it when its connection table settles (`forwarders`) and once per connection in
/// each liveness round (`retryDirect`), and carries out the directives it returns.
public struct RelayUpkeep: Sendable {
    /// The scheme of the tunnelling transport (`relay`): its connections are the tunnelled ones.
    public let scheme: String
    /// How often a relayed connection tries its direct edge again (`linking.direct_retry_s`); doubled per failed
    /// try, up to 8 times.
    public let retryInterval: Duration
    /// How many direct connections a node with relayed ones keeps for its tunnels.
    public static let minimumForwarders = 2

    /// When the node last tried to replace a tunnelled connection by a direct edge, and how many tries so far,
    /// by peer.
    private var tries: [Address: (at: Timestamp, count: Int)] = [:]
    /// The connections that are not tunnelled, cached per table revision (tunnel frames may cross only these).
    private var directCache: (revision: Int, table: ConnectionTable)?

    /// This node's address: of the two ends of a relayed connection, the smaller one retries (`retryDirect`).
    public let local: Address

    public init(scheme: String, retryInterval: Duration, local: Address) {
        self.scheme = scheme
        self.retryInterval = retryInterval
        self.local = local
    }

    public func isTunnelled(_ connection: Connection) -> Bool { connection.transport == scheme }

    /// The connections of `table` that are not tunnelled.
    public mutating func directTable(of table: ConnectionTable) -> ConnectionTable {
        if let cached = directCache, cached.revision == table.revision { return cached.table }
        var direct = ConnectionTable(localAddress: table.localAddress)
        for connection in table.connections where !isTunnelled(connection) { direct.upsert(connection) }
        directCache = (table.revision, direct)
        return direct
    }

    /// While some connections are relayed, keep `minimumForwarders` direct ones as `forwarder`s (a type the
    /// overlords do not trim and the peer sees it wants), or the tunnels would lose their first hop when the
    /// overlords trim direct connections they no longer need: structured ones first (they stay longer), nearest
    /// first. Beside those, the connections in use as forwarders (`inUse`: those our relayed edges send through
    /// first, such as a peer's forwarder we linked to with `OverlayTunnelHost.connectForwarder`, and those our own
    /// relay URIs name) keep the type while they are; the others lose it (in the NAT-mix simulation, links to
    /// forwarders no edge used any more were a tenth of the connections).
    /// With no relayed connection left, the type goes. One forwarder at a time: adding one tells the overlords,
    /// who may change the table, so the node asks again (`keepForwarders`) until this returns nothing.
    public mutating func forwarders(in table: ConnectionTable, inUse: Set<Address> = [],
                                    random: inout SeededRandom) -> [NodeDirective] {
        // A tunnelled connection carries no tunnel frames: one that gained the type anyway (a forwarder
        // Connect-To-Me answered on a relayed connection the two held already, a failover onto a relay) loses it.
        let tunnelled = table.connections.filter { isTunnelled($0) && $0.localTypes.contains(.forwarder) }
        if !tunnelled.isEmpty { return tunnelled.map { .trim(.forwarder, of: $0.address) } }
        let directTable = directTable(of: table)
        let direct = directTable.connections
        let kept = direct.filter { $0.localTypes.contains(.forwarder) }
        if direct.count == table.count { return kept.map { .trim(.forwarder, of: $0.address) } }
        let nearest = directTable.nearestNeighbours(perSide: Self.minimumForwarders).map(\.address)
        // Those for our own relay URIs: the nearest first, then by address (a stable choice, not one that churns).
        let spare = kept.map(\.address).filter { !inUse.contains($0) }.sorted {
            let (left, right) = (nearest.firstIndex(of: $0) ?? nearest.count, nearest.firstIndex(of: $1) ?? nearest.count)
            return left != right ? left < right : $0 < $1
        }
        if spare.count > Self.minimumForwarders {
            return spare.dropFirst(Self.minimumForwarders).map { .trim(.forwarder, of: $0) }
        }
        guard spare.count < Self.minimumForwarders else { return [] }
        let keptAddresses = Set(kept.map(\.address))
        let candidates = nearest + direct.filter { !$0.localTypes.contains(.forwarder) }.map(\.address)
        guard let next = candidates.first(where: { !keptAddresses.contains($0) }) else { return [] }
        return [.addLocalType(.forwarder, to: next, announcedWith: random.next())]
    }

    /// A relayed connection tries the peer's URIs on the node's other transports (`schemes`) now and then, and
    /// moves to a direct edge as soon as one answers (`relink`: both ends link at once, the connection and its
    /// types stay). The first retry comes soon, as a relay often wins a race that a direct edge would have won a
    /// bit later; then the wait doubles with every try, up to 8 times `retryInterval`. `isLinking`: an attempt
    /// to the peer runs already. Only the end with the smaller address retries: its relink makes both ends link
    /// anyway, and a try costs both URIs times tries times two ends in link requests (each a handshake init on
    /// a secured node), the largest part of a NATed node's upkeep. `cannotPunch`: no direct path can join the
    /// pair (a NAT that maps per peer facing a NAT, `Node.cannotPunch`), so no try is made: at 1,000 NATed
    /// nodes the tries were most of the link attempts once the joins were over.
    public mutating func retryDirect(_ connection: Connection, schemes: Set<String>, isLinking: Bool,
                                     cannotPunch: Bool = false, at now: Timestamp) -> [NodeDirective] {
        guard isTunnelled(connection), local < connection.address, !cannotPunch else { return [] }
        let peer = connection.address
        let previous = tries[peer]
        let wait = RetryBackoff.wait(afterTries: previous?.count ?? 0, interval: retryInterval)
        guard now - (previous?.at ?? connection.createdAt) >= wait, !isLinking else { return [] }
        tries[peer] = (now, (previous?.count ?? 0) + 1)
        let direct = schemes.subtracting([connection.transport])
        let uris = connection.peer.uris.filter { direct.contains($0.scheme) }
        guard !uris.isEmpty else { return [] }
        return [.relink(peer, uris: uris, through: nil)]
    }

    /// The connection to `peer` is gone: a new one starts its retries afresh.
    public mutating func connectionRemoved(_ peer: Address) { tries[peer] = nil }

    /// The node stopped.
    public mutating func reset() {
        tries.removeAll()
        directCache = nil
    }
}
