import WOWKit

/// How many strangers' datagrams the node reads while members' traffic flows: members first.
///
/// Every stranger's datagram costs the node a read and an admission check even when it is refused (a few
/// microseconds), and a flood of them (forged sources, init-like bytes) takes as much of a core as it can get:
/// time that members' traffic on the same machine then lacks. So while members' datagrams arrive (one within
/// `memberActivity`), the strangers' socket is read at most `perSecond` datagrams a second (a token bucket
/// holding `burst`); when the tokens run out its reads pause until 10 ms worth are back. The kernel queues
/// strangers meanwhile, and drops what overflows the queue, which costs the node nothing. With members quiet,
/// strangers are read as they come (a joiner's init then competes only with the flood).
///
/// No I/O and no clock of its own: the listener reports reads with their times.
public struct StrangerReadBudget: Sendable {
    /// Strangers' datagrams read per second at most while members are active; 0: no limit.
    public var perSecond: Int
    /// Tokens the bucket holds at most.
    public var burst: Int
    /// Members count as active for this long after their last read.
    public var memberActivity: Duration

    private var tokens: Double
    private var lastRefill: Timestamp?
    private var lastMemberRead: Timestamp?

    public static let defaultPerSecond = 25_000

    public init(perSecond: Int = StrangerReadBudget.defaultPerSecond, memberActivity: Duration = .milliseconds(100)) {
        self.perSecond = max(perSecond, 0)
        // A tenth of a second's worth, and at least a few reads of the strangers' socket.
        burst = max(self.perSecond / 10, 64)
        self.memberActivity = memberActivity
        tokens = Double(burst)
    }

    /// Members' datagrams were read at `now`.
    public mutating func membersRead(at now: Timestamp) {
        lastMemberRead = now
    }

    /// Whether members' traffic counts as flowing at `now`.
    public func membersActive(at now: Timestamp) -> Bool {
        guard let lastMemberRead else { return false }
        return now - lastMemberRead <= memberActivity
    }

    /// `count` strangers' datagrams were read at `now`. Returns how long to pause reading them, or nil to go on.
    public mutating func strangersRead(_ count: Int, at now: Timestamp) -> Duration? {
        let rate = Double(perSecond)
        if let lastRefill, now > lastRefill {
            tokens = min(Double(burst), tokens + (now - lastRefill).seconds * rate)
        }
        lastRefill = max(lastRefill ?? now, now)
        guard perSecond > 0, membersActive(at: now) else {
            // Members quiet: strangers cost nothing against members' next burst.
            tokens = Double(burst)
            return nil
        }
        tokens -= Double(count)
        guard tokens <= 0 else { return nil }
        // Until 10 ms worth of tokens are back (fewer, longer pauses than one read's worth each time).
        let resume = max(rate / 100, 16)
        return .nanoseconds(Int64((resume - tokens) / rate * 1e9))
    }
}
