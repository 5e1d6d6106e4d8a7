/// Routing decisions (Brunet's AHRouter), as pure functions of a header and the connection table.
///
/// Greedy: a packet moves only to a connection strictly nearer to its destination (by the mode's distance)
/// than the current node, so it can never loop; TTL bounds it in every mode. Leaf connections are never
/// next hops, except to deliver to the leaf itself (exact mode) or, from a node not yet in the ring, as its
/// gateway into the ring.
public enum Router {
    public enum Decision: Equatable, Sendable {
        /// This node is the destination.
        case deliver
        /// Send to this peer.
        case forward(to: Address)
        /// Cannot be delivered; tell the source why (unless the packet is itself an error).
        case fail(RoutingError.Code)
    }

    /// Decides what to do with a packet at the node `local`, which received it from `previous` (nil when the
    /// node originates it). Does not check TTL: the caller fails a packet whose hops would exceed it.
    ///
    /// `isRingMember` says whether this node may take delivery of `nearest`/`left`/`right` packets: a node
    /// still joining (no structured connection, not the founder of its ring) must not answer CTMs for the
    /// ring, or joining nodes would form rings of their own.
    public static func decide(_ header: RoutedHeader, at local: Address, table: ConnectionTable,
                              previous: Address?, isRingMember: Bool = true) -> Decision {
        let destination = header.destination
        switch header.mode {
        case .exact:
            if destination == local { return .deliver }
            if table.contains(destination) { return .forward(to: destination) }
            // Never back to where it came from: greedy routing would not, unless the sender detoured through
            // us on purpose (a node whose own path to the destination went stale sends its relink request
            // through a peer that just heard it).
            if let best = table.nearestStructured(to: destination, excluding: previous),
               best.address.distance(to: destination) < local.distance(to: destination) {
                return .forward(to: best.address)
            }
            return viaGateway(table: table, previous: previous) ?? .fail(.absentDestination)

        case .nearest:
            let isSource = header.source == local
            if let best = table.nearestStructured(to: destination, excluding: header.source),
               isSource || best.address.distance(to: destination) < local.distance(to: destination) {
                return .forward(to: best.address)
            }
            if !isSource && isRingMember { return .deliver }
            return viaGateway(table: table, previous: previous) ?? .fail(.noRoute)

        case .left, .right:
            let isLeft = header.mode == .left
            // Distance from the destination in the mode's direction; the destination itself is excluded.
            func reach(_ address: Address) -> Address? {
                guard address != destination else { return nil }
                return isLeft ? destination.leftDistance(to: address) : destination.rightDistance(to: address)
            }
            let best = isLeft ? table.nearestStructured(leftOf: destination) : table.nearestStructured(rightOf: destination)
            let own = reach(local)
            if let best, let bestReach = reach(best.address), own.map({ bestReach < $0 }) ?? true {
                return .forward(to: best.address)
            }
            if own != nil && isRingMember { return .deliver }
            return viaGateway(table: table, previous: previous) ?? .fail(.noRoute)
        }
    }

    /// The peer to try for a packet that failed here with `absentDestination` (this node seems nearest, yet holds
    /// no connection to the destination): `reporter`, the peer that reported the destination as its neighbour,
    /// which holds it directly. For this node's own packets (not tunnel frames: their edge has its own
    /// failover): a ring neighbour whose link to us is still forming. For tunnel frames passed on, which cross
    /// direct connections only: greedy routing over those ends where the way on is relayed. Never back to
    /// `previous`; only exact-mode packets with hops left (a stale report fails at the reporter).
    public static func viaReporter(_ header: RoutedHeader, previous: Address?, isTunnel: Bool,
                                   reporter: Address?) -> Address? {
        guard header.mode == .exact, header.hops < header.ttl, let reporter, reporter != previous,
              previous == nil ? !isTunnel : isTunnel else { return nil }
        return reporter
    }

    /// Another next hop for a packet whose chosen one, `avoided`, sits behind a silent path (`PathWatch`): the
    /// connection's edge carried sends and nothing came back for a whole failover window, so what goes there is
    /// likely lost while the connection moves. For a packet to `avoided` itself, the peer that reported it as
    /// its neighbour (`reporter`, a structured peer: it holds the destination directly); otherwise the
    /// structured connection nearest the destination that is nearer than this node (greedy, so the packet cannot
    /// loop). Never `previous`, nor a peer `isSilent` says is behind a silent path too. Nil when there is no
    /// other way (or for `left`/`right` packets, which go on as they are): the packet takes the silent path.
    public static func detour(_ header: RoutedHeader, avoiding avoided: Address, at local: Address,
                              table: ConnectionTable, previous: Address?, reporter: Address?,
                              isSilent: (Address) -> Bool) -> Decision? {
        guard header.mode == .exact || header.mode == .nearest else { return nil }
        func usable(_ peer: Address) -> Bool { peer != avoided && peer != previous && !isSilent(peer) }
        let destination = header.destination
        if header.mode == .exact, destination == avoided, let reporter, usable(reporter),
           table.connection(to: reporter)?.isStructured == true {
            return .forward(to: reporter)
        }
        guard let best = table.nearestStructured(to: destination, where: usable),
              best.address.distance(to: destination).magnitude < local.distance(to: destination).magnitude else { return nil }
        return .forward(to: best.address)
    }

    /// A node with no structured connection sends everything through its own leaf connection (its gateway
    /// into the ring), unless the packet came from there.
    private static func viaGateway(table: ConnectionTable, previous: Address?) -> Decision? {
        guard !table.hasStructured, let gateway = gateway(in: table), gateway != previous else { return nil }
        return .forward(to: gateway)
    }

    /// The peer of a leaf connection this node made itself (inbound leaves are other nodes joining through us).
    public static func gateway(in table: ConnectionTable) -> Address? {
        table.connections.first { $0.localTypes.contains(.leaf) }?.address
    }
}
