/// The measurements of one simulation run (`wow sim --json` prints this object).
public struct SimulationReport: Codable, Sendable {
    public struct Percentiles: Codable, Sendable, Equatable {
        public var p50: Double
        public var p90: Double
        public var p99: Double
        public var max: Double
        /// How many values the percentiles are over.
        public var count: Int
    }

    public struct Hops: Codable, Sendable {
        public var mean: Double
        public var p50: Double
        public var p99: Double
        public var max: Int
        /// hops -> number of messages.
        public var histogram: [String: Int]
    }

    /// One measurement of the ring and of routing, at a moment of the run.
    public struct Check: Codable, Sendable {
        public var phase: String
        public var at_virtual_s: Double
        public var live_nodes: Int
        public var ring_consistent: Bool
        /// Nodes missing a connection to their true left or right neighbour.
        public var ring_violations: Int
        public var messages_sent: Int
        public var messages_delivered: Int
        public var delivery_ratio: Double
        public var hops: Hops
        public var connections_per_node: Double
        /// Connections per node by the types the node itself asked for (`none` when only the peer asked).
        public var connections_by_local_type: [String: Double]
        /// Connections between live nodes (each counted once) over a direct transport.
        public var connections_direct: Int
        /// Connections over the `relay` transport.
        public var connections_relayed: Int
        /// `connections_relayed` over all connections.
        public var relayed_share: Double
        /// Relayed connections between two nodes whose NATs would let a direct transport through, made at least
        /// `OverlaySimulation.needlessRelayAge` (10 s) before the check: younger ones still wait for their first
        /// direct retry (should be 0).
        public var needless_relays: Int
        /// Connections moved off a path that stopped answering, and pings sent to probe such paths, over all
        /// live nodes since they started (`PathWatch`).
        public var failovers: Int
        public var path_probes: Int
        /// What the live nodes dropped, by reason, while the messages were routed (what lost any).
        public var drops_while_routing: [String: Int]
        /// The first 10 messages that never arrived, as `source -> destination` (short addresses), to trace
        /// with `WOW_SIM_LOG`. Nil from a report that does not say.
        public var lost_messages: [String]?
    }

    public var nodes: Int
    public var seed: UInt64
    public var rtt_ms: [Double]
    public var loss: Double
    /// Consistency and delivery at the end of the run (after churn, when there was churn).
    public var ring_consistent: Bool
    public var delivery_ratio: Double
    /// Seconds from a node's start until its true left and right neighbours are connected.
    public var join_routable_s: Percentiles
    /// Seconds from a node's start until it holds its far links (nodes that got there).
    public var join_far_s: Percentiles
    public var hops: Hops
    /// Seconds from a flow's first packet until both ends held a `structured.shortcut` connection, over the
    /// flows that got one within 10 s (`--flows`); nil when no flows ran.
    public var shortcut_s: Percentiles?
    /// Flows started (`--flows`).
    public var flows: Int = 0
    /// Name lookups through the name service (`--name-lookups`); nil when none ran.
    public struct NameLookups: Codable, Sendable {
        public var asked: Int
        /// Lookups that found a record, and those whose record named the member asked for.
        public var found: Int
        public var correct: Int
        /// Seconds from asking to the answer, over the lookups that found a record.
        public var seconds: Percentiles
    }
    public var name_lookups: NameLookups?
    public var checks: [Check]
    public var churn_left: Int
    public var churn_joined: Int
    public var connections_per_node: Double
    /// Link upkeep while idle: bytes per second per connection, measured over the settle phase's last 30 s.
    public var idle_bytes_per_s_per_connection: Double
    public var packets_sent: Int
    public var packets_dropped: [String: Int]
    /// Packets the nodes themselves dropped, by reason, summed over every node that ever ran.
    public var node_drops: [String: Int]
    public var virtual_s: Double
    public var events: UInt64
    public var wall_s: Double
}
