/// Hears of events a node's counters cannot summarise (durations, distributions), as they happen: what a
/// metrics exporter turns into histograms. Called on the node's executor; must be cheap and must not call back
/// into the node.
public protocol NodeObserver: AnyObject {
    /// A link attempt of this node became a connection `latency` after it started (the link handshake and,
    /// when secured, the secure session's handshake before it), over `transport`.
    func linkEstablished(after latency: Duration, transport: String)
    /// Application data reached this node after `hops` overlay hops.
    func delivered(hops: UInt8)
}
