import WOWSimulator

/// What one local demo run measured (`wow demo --json` prints this object).
public struct DemoReport: Codable, Sendable {
    /// One node of the demo: its transports and when it became routable.
    public struct NodeSummary: Codable, Sendable {
        public var name: String
        public var address: String
        /// The transports it listens on, in the order it advertises them.
        public var transports: [String]
        /// Seconds from its start until it was first connected to its true left and right neighbours (among
        /// the nodes started by then); nil if it never was.
        public var routable_s: Double?
    }

    /// The shortcut step: two nodes that were not directly connected exchange traffic until a
    /// `structured.shortcut` connection joins them.
    public struct ShortcutStep: Codable, Sendable {
        /// The two nodes.
        public var pair: [String]
        /// Seconds from their first packet until both held the shortcut; nil if it did not form in time.
        public var formed_s: Double?
        /// Hops of their packets before the shortcut (both directions).
        public var hops_before: SimulationReport.Hops
        /// Hops of the packets they sent once the shortcut was there (1 each when it carries them).
        public var hops_after: SimulationReport.Hops
    }

    public var nodes: Int
    /// True when every node joined, the ring became consistent, every message was answered and (when there
    /// were two nodes not directly connected) a shortcut formed under traffic.
    public var ok: Bool
    /// Why the run failed, when it did.
    public var failure: String?
    public var ring_consistent: Bool
    /// Seconds from the first node's start until the whole ring was consistent.
    public var ring_formed_s: Double?
    public var join_routable_s: SimulationReport.Percentiles
    public var messages_sent: Int
    public var messages_delivered: Int
    /// Overlay hops of the pings (source to destination) and of their answers.
    public var hops: SimulationReport.Hops
    /// Round trip of a ping and its answer through the overlay, in milliseconds (the first message between
    /// two nodes that are not directly connected includes their end-to-end key exchange).
    public var rtt_ms: SimulationReport.Percentiles
    /// Connections at the end, each counted once.
    public var connections: Int
    public var connections_by_transport: [String: Int]
    /// Connections carrying each type (a connection may carry several).
    public var connections_by_type: [String: Int]
    /// The shortcut step; nil when it did not run (a failure before it, or every pair directly connected).
    public var shortcut: ShortcutStep?
    /// Packets the nodes dropped, by reason, summed over the nodes.
    public var node_drops: [String: Int]
    public var node_list: [NodeSummary]
    public var wall_s: Double
}
