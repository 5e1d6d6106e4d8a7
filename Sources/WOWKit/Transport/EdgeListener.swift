import NIOCore

/// A transport's factory and acceptor of edges (Brunet's EdgeListener): one per transport per node.
///
/// Contract:
/// - The node calls `start` once before anything else, with the delegate that receives inbound edges; then
///   `createEdge` any number of times; then `stop` once. All calls and callbacks happen on the node's executor.
/// - `createEdge` calls `completion` exactly once, later (never from inside `createEdge`), with an edge whose
///   delegate the node sets in that completion, or with an error. Datagram transports may succeed at once
///   (no handshake); stream transports after the connection is up.
/// - `localURIs` lists every URI peers may use to reach this node, including public ones learned from peers
///   (`learnObservedURI`); it may change over time.
/// - `stop` closes every edge (each reports `edgeDidClose`) and accepts nothing more.
public protocol EdgeListener: AnyObject {
    /// The URI scheme this listener serves.
    var scheme: String { get }
    var localURIs: [TransportURI] { get }
    func start(delegate: any EdgeListenerDelegate) throws
    func createEdge(to uri: TransportURI, completion: @escaping (Result<any Edge, EdgeError>) -> Void)
    /// A peer reported that it sees this node at `uri` (which may be a NAT mapping). The listener decides
    /// whether to advertise it. The default does nothing.
    func learnObservedURI(_ uri: TransportURI)
    /// Whether a URI peers see this node at is the NAT's mapping of one socket that every peer reaches (a
    /// datagram transport), so that two peers seeing two ports tells the NAT maps per peer; not the source port
    /// of one stream connection. The default is false.
    var observedURIsAreMappings: Bool { get }
    /// Whether `localURIs` follow the host's interface addresses (a socket bound to a wildcard address): then
    /// the node calls `refreshLocalAddresses` every second. The default is false.
    var followsInterfaceAddresses: Bool { get }
    /// Lists the host's interface addresses again, but for `ignoring` (hosts that are no underlay: the node's
    /// own virtual IPs, on its TUN device), and says whether they changed to a new, usable set: the host
    /// moved to another network. URIs learned from peers are then forgotten (they were the old network's
    /// NAT mappings). While the host has no address but loopback it keeps the old ones (a cable being
    /// re-plugged). The default does nothing and returns false.
    func refreshLocalAddresses(ignoring: Set<String>) -> Bool
    /// What the listener dropped so far (datagrams, fragments, connections), by reason: its `DropCounter`'s
    /// names, shown by `wow status` beside the node's own. The default is none.
    var dropsByReason: [String: Int] { get }
    func stop()
}

extension EdgeListener {
    public func learnObservedURI(_ uri: TransportURI) {}
    public var observedURIsAreMappings: Bool { false }
    public var followsInterfaceAddresses: Bool { false }
    public func refreshLocalAddresses(ignoring: Set<String>) -> Bool { false }
    public var dropsByReason: [String: Int] { [:] }
}

/// Receives edges that remote nodes open. Called on the node's executor; the node sets the edge's delegate
/// inside this call.
public protocol EdgeListenerDelegate: AnyObject {
    func edgeListener(_ listener: any EdgeListener, didAccept edge: any Edge)
    /// Whether `packet`, the first whole packet from a remote that has no edge, may make one. A datagram
    /// transport asks before it keeps anything for that remote (no edge, no reassembly), so that traffic
    /// which cannot come from a member costs nothing but this call (docs/security.md, "Admission").
    /// `remote` names the sender, for logs only (making it may allocate). The default admits everything.
    func edgeListener(_ listener: any EdgeListener, admit packet: ByteBuffer,
                      from remote: () -> TransportURI) -> EdgeAdmission
    /// Whether a remote that has no edge is admitted only when its first packet proves it (a secured node: a
    /// handshake init with the network's admission MAC, fresh, which fits one datagram). Then a datagram
    /// transport puts no stranger's fragments back together, and trusts an admitted stranger's edge at once
    /// (udp steers it to members' socket from its first packet). The default says no.
    var admitsOnlyAuthenticatedStrangers: Bool { get }
}

extension EdgeListenerDelegate {
    public func edgeListener(_ listener: any EdgeListener, admit packet: ByteBuffer,
                             from remote: () -> TransportURI) -> EdgeAdmission { .accept }
    public var admitsOnlyAuthenticatedStrangers: Bool { false }
}

/// What a listener does with a packet from a remote that has no edge.
public enum EdgeAdmission: Equatable {
    /// Make an edge and deliver the packet on it.
    case accept
    /// Keep nothing, answer nothing.
    case drop
    /// Keep nothing; send `answer` to the remote (a refusal, at a rate the delegate bounds).
    case reply(ByteBuffer)
}
