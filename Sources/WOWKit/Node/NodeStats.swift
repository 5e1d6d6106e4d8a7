/// Counters of one node: traffic, link attempts, and every dropped packet by reason.
public struct NodeStats: Sendable {
    public var packetsIn = 0
    public var packetsOut = 0
    public var bytesIn = 0
    public var bytesOut = 0
    public var routedForwarded = 0
    public var routedDelivered = 0
    public var linkAttempts = 0
    public var linkFailures = 0
    public var connectsRequested = 0
    public var connectsFailed = 0
    /// Dropped packets by reason (`truncated`, `not_linked`, `ttl_expired`, ...).
    public var drops: [String: Int] = [:]

    public init() {}

    mutating func drop(_ reason: String) { drops[reason, default: 0] += 1 }

    public var totalDrops: Int { drops.values.reduce(0, +) }
}
