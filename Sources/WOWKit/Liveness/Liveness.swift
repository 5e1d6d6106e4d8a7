/// Keeping connections alive and finding dead ones, as a state machine: a round every third of the ping
/// interval (jittered, so nodes' rounds spread out) pings connections silent for `pingInterval`, closes those
/// silent for `deadAfter` (the overlords repair the ring), and closes edges that never carried a connection, or
/// stopped carrying one, for a while (refused handshakes, stray packets, drained trims).
public struct Liveness: Sendable {
    public let settings: NodeConfig.Liveness
    /// How long an edge without a connection stays open: what a link attempt may need on it.
    public let staleEdgeAfter: Duration

    public init(settings: NodeConfig.Liveness, linking: NodeConfig.Linking) {
        self.settings = settings
        self.staleEdgeAfter = linking.replyTimeout * (linking.attemptsPerURI + 2)
    }

    /// When the next round runs: a third of the ping interval, plus up to a quarter of that at random.
    public func nextRound(random: inout SeededRandom) -> Duration {
        let interval = settings.pingInterval / 3
        let jitter = Duration.nanoseconds(Int64(random.unit() * Double(interval.nanoseconds)))
        return interval + jitter / 4
    }

    /// One round over the connections and the edges (`edges`: id and since when it carries no connection it
    /// started or was left with, ascending by id). An edge that carries a connection or a link attempt stays,
    /// whatever this asks (`closeEdgeIfUnused`).
    public func round(connections: [Connection], edges: [(id: EdgeID, idleSince: Timestamp)],
                      at now: Timestamp) -> [NodeDirective] {
        var directives: [NodeDirective] = []
        for connection in connections {
            let silent = now - connection.lastHeard
            if silent >= settings.deadAfter {
                directives.append(.removeConnection(connection.address, reason: "dead"))
                directives.append(.closeEdgeIfUnused(connection.edgeID))
            } else if silent >= settings.pingInterval {
                directives.append(.send(.ping(nonce: UInt64(bitPattern: now.nanoseconds)), on: connection.edgeID))
            }
        }
        for edge in edges where now - edge.idleSince > staleEdgeAfter {
            directives.append(.closeEdgeIfUnused(edge.id))
        }
        return directives
    }
}
