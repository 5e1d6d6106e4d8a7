/// Routing of `tunnel` packets (the frames of relayed edges) over direct connections only, as a pure function.
///
/// Straight to the destination if it is a direct peer; else to the forwarder of this node's own relayed
/// connection to the destination, if that one is a direct peer; else towards the named forwarder (`via`); and when
/// there is none, or it cannot be reached or lost the destination, towards the destination itself, with `via`
/// cleared so that later nodes do the same. Each phase is greedy (the sender's own first step excepted, as
/// its ring neighbours may all be relayed), and the phase changes at most once, so a tunnel packet cannot loop;
/// the hand-over to a relayed connection's forwarder aside, whose forwarder, had it just lost the destination,
/// could route the packet back around (the hop limit ends that).
public enum TunnelRouter {
    /// What to do with a tunnel packet at `local`, whose direct (not tunnelled) connections are `direct`.
    /// `previous` is the hop it came from (nil: this node sends it). `clearVia`: forward it with `via` cleared.
    /// `relayedVia`: the forwarder of this node's relayed connection to the destination, if this node has one
    /// and that forwarder is a direct peer. The destination sends its frames to us through it, so it holds the
    /// destination directly: two hops, where greedy routing over direct connections can end at a node (this one)
    /// whose only way to the destination is relayed. Not back to the hop the frame came from (it lost the
    /// destination, or it would have delivered). Asked only of a node passing a frame on: the sender's own
    /// frame names its edge's forwarder in `via` already, and the sender's path is every relayed packet's.
    public static func decide(_ header: RoutedHeader, via: Address, previous: Address?, at local: Address,
                              direct: ConnectionTable, isRingMember: Bool,
                              relayedVia: @autoclosure () -> Address? = nil) -> (decision: Router.Decision, clearVia: Bool) {
        if header.destination == local { return (.deliver, false) }
        if direct.contains(header.destination) { return (.forward(to: header.destination), false) }
        if let previous, let relayedVia = relayedVia(), relayedVia != previous, relayedVia != local,
           direct.contains(relayedVia) {
            return (.forward(to: relayedVia), false)
        }
        if via != .zero && via != local {
            if direct.contains(via) { return (.forward(to: via), false) }
            var toward = header
            toward.destination = via
            let decision = Router.decide(toward, at: local, table: direct, previous: previous, isRingMember: isRingMember)
            if case .forward = decision { return (decision, false) }
            if previous == nil, let start = direct.nearestStructured(to: via) { return (.forward(to: start.address), false) }
        }
        let decision = Router.decide(header, at: local, table: direct, previous: previous, isRingMember: isRingMember)
        if case .forward = decision { return (decision, via != .zero) }
        if previous == nil, let start = direct.nearestStructured(to: header.destination) ?? direct.connections.first {
            return (.forward(to: start.address), via != .zero)
        }
        if case .deliver = decision { return (.fail(.noRoute), false) }
        return (decision, false)
    }
}
