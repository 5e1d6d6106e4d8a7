import NIOCore

/// What a node offers a transport whose edges are tunnelled through the overlay itself (the `relay`
/// transport): sending frames to a node over the node's direct connections, and knowing who those are.
/// Called on the node's executor only.
public protocol OverlayTunnelHost: AnyObject {
    /// This node's ring address.
    var localAddress: Address { get }
    /// Peers this node reaches over direct (not tunnelled) connections, the ones worth naming as forwarders
    /// first: nearest ring neighbours, then the rest, then leaves.
    var directPeers: [Address] { get }
    /// Whether a peer saw this node at a URI its transport is bound to (no NAT in between): then others can
    /// most likely reach it without a relay.
    var isReachableDirectly: Bool { get }
    /// Whether `peer` is connected to this node over a direct (not tunnelled) connection.
    func isDirectPeer(_ peer: Address) -> Bool
    /// The URIs `peer` advertised: when it last linked with this node, or in the info a link attempt to it
    /// is using (empty if neither).
    func advertisedURIs(of peer: Address) -> [TransportURI]
    /// Links directly to `forwarder` (a Connect-To-Me in exact mode, type `forwarder`), so that a tunnel
    /// through it takes two hops. Does nothing if a direct connection or a connect to it exists.
    func connectForwarder(_ forwarder: Address)
    /// Sends `frame` to `destination` as a `tunnel` routed packet: to `via` first if that is given and
    /// reachable, then straight to `destination`. Returns false (nothing sent) when there is no way.
    func sendTunnelFrame(_ frame: ByteBuffer, to destination: Address, via: Address?) -> Bool
}

/// A listener whose edges are tunnelled through the overlay. The node attaches itself after building the
/// listener, hands it every `tunnel` frame addressed to this node, and tells it when one could not be
/// delivered. Connections over its edges are never used to carry tunnel frames.
public protocol OverlayTunnelListener: EdgeListener {
    /// Called once, before `start`. The listener must hold the host weakly (the host holds the listener).
    func attach(host: any OverlayTunnelHost)
    /// The node a URI of this transport goes through first (its forwarder), nil if `uri` is not one of its URIs.
    func forwarder(of uri: TransportURI) -> Address?
    /// The URI of this transport that reaches `target` through `forwarder`.
    func uri(forwarder: Address, target: Address) -> TransportURI
    /// A frame from `source`, which names `returnVia` as the way back.
    func receiveTunnelFrame(_ frame: ByteBuffer, from source: Address, returnVia: Address)
    /// A tunnel frame this node sent to `destination` was not delivered (`reporter` gave up).
    func tunnelFrameUndeliverable(to destination: Address, reporter: Address, code: RoutingError.Code)
}

/// An edge tunnelled through another node (a `relay` edge): frames reach the peer through `forwarder`.
public protocol TunnelledEdge: Edge {
    /// The remote node: the source its frames' routed packets name.
    var peer: Address { get }
    /// The node frames go through first; it may change while the edge lives (forwarders fail). `.zero`: none,
    /// frames route toward the peer itself over direct connections.
    var forwarder: Address { get }
}
