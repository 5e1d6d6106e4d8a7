/// Finding a connection's path dead while traffic flows, and moving the connection to another path, as a state
/// machine. `Liveness` notices an idle connection's death after `deadAfter` (tens of seconds); a path that dies
/// under traffic (a firewall starts dropping UDP, a NAT mapping goes) must be left within about a second, or the
/// TCP sessions over the virtual network stall for as long.
///
/// The signal is the one a sender has: it sent application traffic on the connection's edge and nothing came
/// back since (`unansweredSince`, kept per edge by the node, set by routed data only
/// (`EdgeMessage.isApplicationTraffic`) and cleared by any packet received there). From half the
/// failover window on, the connection is probed (pings, a fifth of the window apart), so a peer that merely has
/// nothing to say answers; when the whole window passes without a packet, the connection moves: a `relink`
/// attempt to the peer's other URIs (other transports first), raced as any first round, and, where another
/// connection still answers, a relink Connect-To-Me through it so that a peer only it can reach links back.
/// The connection, its types, its ring position and the end-to-end sessions over it stay; the peer moves its end
/// when our relink request reaches it. A failover that finds no way makes the next one wait twice as long.
/// From the end of the window until the edge answers again or the connection moves, the path is silent
/// (`silentPaths`): packets that would take it go over the ring instead, sealed end to end (`Router.detour`),
/// so a stream over the virtual network goes on while the connection looks for its next path, however long
/// that takes (a relink that must wait for the peer's NAT mapping, say).
/// Probes cost nothing while packets come back, and an idle connection (nothing sent) is `Liveness`'s alone.
///
/// A connection that failed over remembers the path it left and tries it again now and then (`retryLeftPath`,
/// on the liveness rounds: soon, then less and less often), so it moves back when, say, UDP gets through again.
public struct PathWatch: Sendable {
    /// How long a connection's edge may carry sends with nothing back before the connection moves; `.zero`
    /// turns failover off. A path with a long round trip gets four round trips.
    public let failoverAfter: Duration
    /// How often a connection tries the path it left (`linking.direct_retry_s`): see `RetryBackoff`.
    public let retryInterval: Duration
    /// Failovers that have not found a way yet, by peer: when, and how many in a row.
    private var failovers: [Address: (at: Timestamp, count: Int)] = [:]
    /// Peers whose connection's edge stayed unanswered for a whole window: packets that would take it go over
    /// the ring meanwhile (`Router.detour`), until that edge answers or the connection moves or goes.
    public private(set) var silentPaths: Set<Address> = []
    /// The path each failed-over connection left, and its tries to go back: when the last one was, how many.
    private var leftPaths: [Address: (uri: TransportURI, at: Timestamp, tries: Int)] = [:]
    /// The longest wait between failovers of one connection.
    static let maximumBackoff = 32

    public init(failoverAfter: Duration, retryInterval: Duration = .seconds(30)) {
        self.failoverAfter = failoverAfter
        self.retryInterval = retryInterval
    }

    /// What the node knows about one connection's active path.
    public struct Path: Sendable {
        public var connection: Connection
        /// Since when the edge carried sends without a packet back; nil while it answers.
        public var unansweredSince: Timestamp?
        /// When the last probe went out on the edge.
        public var probedAt: Timestamp?
        /// Whether a link attempt to the peer is under way (a failover's, or any other).
        public var isLinking: Bool

        public init(connection: Connection, unansweredSince: Timestamp?, probedAt: Timestamp?, isLinking: Bool) {
            self.connection = connection
            self.unansweredSince = unansweredSince
            self.probedAt = probedAt
            self.isLinking = isLinking
        }
    }

    /// What the node must do.
    public enum Decision: Equatable, Sendable {
        /// Ping the connection's edge.
        case probe(Address, EdgeID)
        /// Move the connection to `peer` off its silent edge: link to `uris` with a `relink` attempt, and ask
        /// the peer to link back through `through` (an edge that answers), if there is one.
        case failover(peer: Address, from: EdgeID, uris: [TransportURI], through: EdgeID?, silentFor: Duration)
    }

    /// How long the path of `connection` may stay unanswered: the failover window, or four round trips.
    public func window(for connection: Connection) -> Duration {
        max(failoverAfter, (connection.roundTrip ?? .zero) * 4)
    }

    /// How often the node should check while some edge is unanswered.
    public var checkInterval: Duration { failoverAfter / 5 }

    /// How long after an edge's first unanswered send a check could first act on it.
    public var firstProbeAfter: Duration { failoverAfter / 2 }

    /// Whether a path unanswered since `since` may need a probe or a failover now (the shortest window: a path
    /// with a longer round trip may not yet). The node skips a full `check` while none does.
    public func mayAct(unansweredSince since: Timestamp, at now: Timestamp) -> Bool {
        now - since >= firstProbeAfter
    }

    /// One check of every connection's path. `schemes`: the transports this node runs (URIs of others cannot be
    /// tried). Returns what to do, and whether any path is still unanswered (the node checks again then).
    public mutating func check(_ paths: [Path], schemes: Set<String>, at now: Timestamp)
        -> (decisions: [Decision], watching: Bool) {
        guard failoverAfter > .zero else { return ([], false) }
        var decisions: [Decision] = []
        var watching = false
        var failedSchemes: Set<String> = []
        var probed: Set<Address> = []
        for path in paths {
            let peer = path.connection.address
            guard let since = path.unansweredSince else {
                failovers[peer] = nil
                silentPaths.remove(peer)
                continue
            }
            watching = true
            let window = window(for: path.connection)
            let silent = now - since
            guard silent >= window / 2 else { continue }
            if silent >= window { silentPaths.insert(peer) }
            if silent >= window, !path.isLinking, mayFailOver(peer, window: window, at: now) {
                let uris = Self.alternatives(to: path.connection, schemes: schemes)
                // Ask back only through a connection heard within the window: an idle one may have died with this
                // path (the same transport, say) without anyone noticing yet.
                let through = paths.filter {
                    $0.unansweredSince == nil && $0.connection.address != peer && now - $0.connection.lastHeard <= window
                }.max { $0.connection.lastHeard < $1.connection.lastHeard }?.connection.edgeID
                let count = (failovers[peer]?.count ?? 0) + 1
                failovers[peer] = (now, count)
                if leftPaths[peer] == nil { leftPaths[peer] = (path.connection.remoteURI, now, 0) }
                failedSchemes.insert(path.connection.transport)
                decisions.append(.failover(peer: peer, from: path.connection.edgeID, uris: uris, through: through,
                                           silentFor: silent))
            } else if path.probedAt.map({ $0 < since || now - $0 >= window / 5 }) ?? true {
                decisions.append(.probe(peer, path.connection.edgeID))
                probed.insert(peer)
            }
        }
        // A dead path often means a dead transport (a firewall change): every other connection over it is
        // probed now, so those that carry nothing at the moment are found out as soon.
        for path in paths where failedSchemes.contains(path.connection.transport) && path.unansweredSince == nil
            && !probed.contains(path.connection.address) {
            decisions.append(.probe(path.connection.address, path.connection.edgeID))
            watching = true
        }
        return (decisions, watching)
    }

    /// Whether a connection may fail over now: its first time, or after twice the wait of its last failover.
    private func mayFailOver(_ peer: Address, window: Duration, at now: Timestamp) -> Bool {
        guard let last = failovers[peer] else { return true }
        return now - last.at >= window * min(1 << last.count, Self.maximumBackoff)
    }

    /// The URIs to move a connection to: the peer's URIs other than the silent one, of transports this node
    /// runs, other transports first (what killed one path often kills its transport), otherwise in the peer's
    /// order.
    public static func alternatives(to connection: Connection, schemes: Set<String>) -> [TransportURI] {
        let others = connection.peer.uris.filter { $0 != connection.remoteURI && schemes.contains($0.scheme) }
        return others.filter { $0.scheme != connection.transport } + others.filter { $0.scheme == connection.transport }
    }

    /// A failed-over connection's turn to try the path it left (the liveness round's): the URI to relink to,
    /// when the wait since its last try (`RetryBackoff`) is over and no link attempt to the peer runs. A
    /// connection back on that URI, or on its transport, forgets it.
    public mutating func retryLeftPath(_ connection: Connection, isLinking: Bool, at now: Timestamp) -> TransportURI? {
        let peer = connection.address
        guard let left = leftPaths[peer] else { return nil }
        guard connection.transport != left.uri.scheme else {
            leftPaths[peer] = nil
            return nil
        }
        guard !isLinking, now - left.at >= RetryBackoff.wait(afterTries: left.tries, interval: retryInterval) else {
            return nil
        }
        leftPaths[peer] = (left.uri, now, left.tries + 1)
        return left.uri
    }

    /// The path `connection` left in a failover and tries again, if any (none once it is back on that transport,
    /// as `retryLeftPath` finds at its next turn).
    public func leftPath(of connection: Connection) -> TransportURI? {
        guard let left = leftPaths[connection.address], connection.transport != left.uri.scheme else { return nil }
        return left.uri
    }

    /// Whether the connection to `peer` failed over and its new path has not answered yet.
    public func isFailingOver(_ peer: Address) -> Bool { failovers[peer] != nil }

    /// Whether the connection to `peer` is on a silent path (`silentPaths`). Hot path: every routed packet.
    public func isSilent(_ peer: Address) -> Bool { !silentPaths.isEmpty && silentPaths.contains(peer) }

    /// A packet came back on the edge of the connection to `peer`: its path answers again.
    public mutating func pathAnswered(_ peer: Address) {
        if !silentPaths.isEmpty { silentPaths.remove(peer) }
    }

    /// The connection to `peer` moved to another edge: a failover under way found its way, and the new path
    /// is not silent (yet).
    public mutating func connectionMoved(_ peer: Address) {
        failovers[peer] = nil
        silentPaths.remove(peer)
    }

    /// The connection to `peer` went.
    public mutating func connectionRemoved(_ peer: Address) {
        failovers[peer] = nil
        leftPaths[peer] = nil
        silentPaths.remove(peer)
    }

    /// The node stopped.
    public mutating func reset() {
        failovers.removeAll()
        leftPaths.removeAll()
        silentPaths.removeAll()
    }
}
