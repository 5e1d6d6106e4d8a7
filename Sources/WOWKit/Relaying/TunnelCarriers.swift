/// The direct connections that carry relayed connections' tunnel frames, as a state machine: on a forwarder,
/// the hop to a tunnel's end (and back from it); on a tunnel's end, the hop to and from its forwarder.
///
/// A relayed connection depends on them without their types saying so: the overlords trim them once the ring
/// settles (a forwarder near a node while it joined is no longer near once the ring filled in), and every frame
/// of the relayed connection would then be lost until its liveness gave up on it. So a trim that would close
/// such a connection leaves it open, without types, until no tunnel frame has crossed it for `idleAfter` (the
/// node's `dead_after_s`: a relayed connection silent that long is dead, and an idle live one pings more often).
/// Only the node's own trims wait; a peer's `close` or a dead connection ends it as before.
public struct TunnelCarriers: Sendable {
    /// How long after its last tunnel frame a connection no longer counts as carrying any.
    public let idleAfter: Duration
    /// When a tunnel frame last crossed the connection to each peer (direct peers only; stale ones are dropped
    /// by `sweep`).
    private var lastFrame: [Address: Timestamp] = [:]
    /// The peers whose connection a trim left open for its tunnel frames.
    public private(set) var kept: Set<Address> = []

    public init(idleAfter: Duration) { self.idleAfter = idleAfter }

    /// A tunnel frame crossed the connection to `peer`. One dictionary update per frame.
    public mutating func carried(by peer: Address, at now: Timestamp) { lastFrame[peer] = now }

    /// Whether a tunnel frame crossed the connection to `peer` within `idleAfter`.
    public func isCarrying(_ peer: Address, at now: Timestamp) -> Bool {
        lastFrame[peer].map { now - $0 < idleAfter } ?? false
    }

    /// A trim would close the connection to `peer`: whether it stays open instead, because it carries tunnel
    /// frames. If it does, `sweep` returns it once it no longer does.
    public mutating func keepsOpen(_ peer: Address, at now: Timestamp) -> Bool {
        guard isCarrying(peer, at: now) else { return false }
        kept.insert(peer)
        return true
    }

    /// The kept connections no tunnel frame crossed for `idleAfter`, in address order: the node closes those
    /// that still have no type at either end. Forgets older frames.
    public mutating func sweep(at now: Timestamp) -> [Address] {
        lastFrame = lastFrame.filter { now - $0.value < idleAfter }
        let idle = kept.filter { lastFrame[$0] == nil }.sorted()
        kept.subtract(idle)
        return idle
    }

    /// The connection to `peer` is gone.
    public mutating func connectionRemoved(_ peer: Address) {
        kept.remove(peer)
        lastFrame[peer] = nil
    }

    /// The node stopped.
    public mutating func reset() {
        kept.removeAll()
        lastFrame.removeAll()
    }
}
