/// A node's connections, sorted by the peer's ring address, with the ring queries routing and overlords need.
///
/// Pure data: the node mutates it on its executor; overlords get it read-only.
public struct ConnectionTable: Sendable {
    /// The owning node's address; sides are relative to it.
    public let localAddress: Address
    /// Sorted by `address`.
    public private(set) var connections: [Connection] = []
    /// The peer whose connection each edge carries: `connection(on:)` runs for every received packet.
    private var peersByEdge: [EdgeID: Address] = [:]

    public init(localAddress: Address) { self.localAddress = localAddress }

    public var count: Int { connections.count }
    public var isEmpty: Bool { connections.isEmpty }

    private func index(of address: Address) -> (found: Bool, index: Int) {
        var low = 0
        var high = connections.count
        while low < high {
            let mid = (low + high) / 2
            if connections[mid].address < address { low = mid + 1 } else { high = mid }
        }
        return (low < connections.count && connections[low].address == address, low)
    }

    public func connection(to address: Address) -> Connection? {
        let (found, index) = index(of: address)
        return found ? connections[index] : nil
    }

    public func contains(_ address: Address) -> Bool { index(of: address).found }

    /// The edge of the connection to `address`: routing asks for every packet, so without copying the connection.
    public func edgeID(to address: Address) -> EdgeID? {
        let (found, index) = index(of: address)
        return found ? connections[index].edgeID : nil
    }

    /// Changes whenever a connection is added or removed or its edge, transport or types change (not for
    /// timestamps or round trips): what caches derived from the table compare.
    public private(set) var revision = 0

    private static func differInShape(_ a: Connection, _ b: Connection) -> Bool {
        a.edgeID != b.edgeID || a.transport != b.transport || a.localTypes != b.localTypes || a.remoteTypes != b.remoteTypes
    }

    /// Adds or replaces the connection to `connection.address`.
    public mutating func upsert(_ connection: Connection) {
        let (found, index) = index(of: connection.address)
        if found {
            if Self.differInShape(connections[index], connection) { revision += 1 }
            moveEdge(from: connections[index], to: connection)
            connections[index] = connection
        } else {
            connections.insert(connection, at: index)
            peersByEdge[connection.edgeID] = connection.address
            revision += 1
        }
    }

    /// Keeps `peersByEdge` true when a connection's edge changes.
    private mutating func moveEdge(from before: Connection, to after: Connection) {
        guard before.edgeID != after.edgeID else { return }
        if peersByEdge[before.edgeID] == before.address { peersByEdge[before.edgeID] = nil }
        peersByEdge[after.edgeID] = after.address
    }

    @discardableResult
    public mutating func remove(_ address: Address) -> Connection? {
        let (found, index) = index(of: address)
        guard found else { return nil }
        revision += 1
        let removed = connections.remove(at: index)
        if peersByEdge[removed.edgeID] == address { peersByEdge[removed.edgeID] = nil }
        return removed
    }

    /// Applies `change` to the connection to `address`, if there is one.
    public mutating func update(_ address: Address, _ change: (inout Connection) -> Void) {
        let (found, index) = index(of: address)
        guard found else { return }
        let before = connections[index]
        change(&connections[index])
        if Self.differInShape(before, connections[index]) {
            revision += 1
            moveEdge(from: before, to: connections[index])
        }
    }

    /// Notes a packet from `address` now (`onPath`: over the connection's own edge). For every received packet,
    /// so in place, without the copy `update` compares against (times do not change a connection's shape).
    public mutating func noteHeard(from address: Address, at now: Timestamp, onPath: Bool) {
        let (found, index) = index(of: address)
        guard found else { return }
        connections[index].lastHeard = now
        if onPath { connections[index].lastHeardOnPath = now }
    }

    public func connections(ofType type: ConnectionType) -> [Connection] {
        connections.filter { $0.types.contains(type) }
    }

    /// Structured connections (usable for routing).
    public var structured: [Connection] { connections.filter(\.isStructured) }

    /// Whether any connection is structured (cheaper than `structured.isEmpty`).
    public var hasStructured: Bool { connections.contains(where: \.isStructured) }

    /// The connection carried by `edge`, if any.
    public func connection(on edge: EdgeID) -> Connection? { peer(on: edge).flatMap(connection(to:)) }

    /// The peer whose connection `edge` carries, if any (one dictionary lookup).
    public func peer(on edge: EdgeID) -> Address? { peersByEdge[edge] }

    /// Up to `count` structured connections on the left (greater addresses, wrapping), nearest first.
    public func leftNeighbours(_ count: Int) -> [Connection] { neighbours(count, towardsLeft: true) }

    /// Up to `count` structured connections on the right (smaller addresses, wrapping), nearest first.
    public func rightNeighbours(_ count: Int) -> [Connection] { neighbours(count, towardsLeft: false) }

    private func neighbours(_ count: Int, towardsLeft: Bool) -> [Connection] {
        guard count > 0, !connections.isEmpty else { return [] }
        var result: [Connection] = []
        let n = connections.count
        let start = index(of: localAddress)
        // Walk the sorted array from our position, wrapping; skip leaf-only connections.
        var position = towardsLeft ? (start.found ? start.index + 1 : start.index) : start.index - 1
        var visited = 0
        while visited < n && result.count < count {
            let i = ((position % n) + n) % n
            if connections[i].isStructured && connections[i].address != localAddress { result.append(connections[i]) }
            position += towardsLeft ? 1 : -1
            visited += 1
        }
        return result
    }

    /// The `k` nearest structured peers on each side, nearest first: the view of the ring shared in
    /// link replies and status messages. A peer can appear on both sides in a very small ring; it is listed once.
    public func nearestNeighbours(perSide k: Int) -> [Connection] {
        var seen = Set<Address>()
        var result: [Connection] = []
        let left = leftNeighbours(k)
        let right = rightNeighbours(k)
        for i in 0..<max(left.count, right.count) {
            if i < left.count, seen.insert(left[i].address).inserted { result.append(left[i]) }
            if i < right.count, seen.insert(right[i].address).inserted { result.append(right[i]) }
        }
        return result
    }

    /// The structured connection nearest to `target` by ring distance, excluding `excluded`.
    public func nearestStructured(to target: Address, excluding excluded: Address? = nil) -> Connection? {
        nearestStructured(to: target) { $0 != excluded }
    }

    /// The structured connection nearest to `target` among those whose peer `isUsable` accepts.
    public func nearestStructured(to target: Address, where isUsable: (Address) -> Bool) -> Connection? {
        var best: Connection?
        var bestDistance = Address.max
        for connection in connections where connection.isStructured && isUsable(connection.address) {
            let distance = connection.address.distance(to: target).magnitude
            if distance < bestDistance {
                best = connection
                bestDistance = distance
            }
        }
        return best
    }

    /// The structured connection whose address lies nearest on the left of `target` (strictly), by left distance.
    public func nearestStructured(leftOf target: Address) -> Connection? {
        nearestStructured(from: target) { target.leftDistance(to: $0) }
    }

    /// The structured connection whose address lies nearest on the right of `target` (strictly).
    public func nearestStructured(rightOf target: Address) -> Connection? {
        nearestStructured(from: target) { target.rightDistance(to: $0) }
    }

    private func nearestStructured(from target: Address, distance: (Address) -> Address) -> Connection? {
        var best: Connection?
        var bestDistance = Address.max
        for connection in connections where connection.isStructured && connection.address != target {
            let d = distance(connection.address)
            if d < bestDistance {
                best = connection
                bestDistance = d
            }
        }
        return best
    }
}
