import NIOCore

/// A bidirectional packet pipe to one remote transport endpoint (Brunet's Edge).
///
/// Contract:
/// - Every method is called, and every delegate callback made, on the owning node's executor (its event loop,
///   or the simulator's single thread). An edge is not thread-safe and need not be.
/// - `send` never blocks and never throws: a packet that cannot be sent is dropped (the transport counts it);
///   transports are allowed to lose packets, as UDP does. The edge takes ownership of the buffer.
/// - The edge delivers each received packet whole (one `didReceive` per packet) to its delegate, which the
///   node sets before the first packet can arrive (in `EdgeListenerDelegate.edgeListener(_:didAccept:)` for
///   inbound edges, in the `createEdge` completion for outbound ones).
/// - `close` is idempotent; after it, `send` drops and no callback is made except at most one `edgeDidClose`.
///   An edge also closes by itself when its transport learns the remote end is gone (a TCP reset); it then
///   calls `edgeDidClose` once.
public protocol Edge: AnyObject {
    /// The transport's URI scheme (`udp`, `tcp`, `memory`, ...).
    var transport: String { get }
    /// This end's URI as the transport knows it.
    var localURI: TransportURI { get }
    /// The other end's URI: for inbound edges, the address packets come from (after any NAT).
    var remoteURI: TransportURI { get }
    /// Whether the remote end opened this edge.
    var isInbound: Bool { get }
    var isClosed: Bool { get }
    var delegate: (any EdgeDelegate)? { get set }
    func send(_ packet: consuming ByteBuffer)
    func close()
    /// Bytes the edge wants free before and after a packet's bytes, to frame it in place (a `SecuredEdge`
    /// seals there, with no copy). The node encodes every message with this room; 0 (the default) for
    /// transports that send packets as they are.
    var framingHeadroom: Int { get }
    var framingTailroom: Int { get }
}

extension Edge {
    public var framingHeadroom: Int { 0 }
    public var framingTailroom: Int { 0 }
}

/// An edge that can open the sender's own NAT toward its remote end without reaching the remote: UDP hole
/// punching (docs/architecture.md, "Hole punching"). An optional capability: transports whose edges do not
/// conform (tcp, tls, relay) need nothing, and the linker then neither punches nor waits on them.
///
/// Contract:
/// - `punch(ttl:)` is called by the node on its executor, like every `Edge` method, before the first link
///   request of an attempt on this edge, and at most a few times per attempt.
/// - It sends `PunchPacket.countPerPunch` punch packets (`PunchPacket`) to `remoteURI` from the same local
///   endpoint as the edge's other packets, with the IP TTL (IPv6 hop limit) `ttl`, so that they pass the
///   sender's own NAT(s), creating the mapping and filter entry for the remote, and die before the remote's
///   NAT. Packets sent before or after it keep the normal TTL.
/// - Like `send`, it never blocks or throws; on a closed edge, or when the socket cannot take it, it does
///   nothing (the transport counts or logs it).
/// - A receiver that gets a punch packet anyway drops it silently and makes no edge for it.
public protocol HolePunchingEdge: Edge {
    /// Sends the punch packets with IP TTL `ttl` (1...255).
    func punch(ttl: UInt8)
}

/// Receives what an edge delivers. Called on the node's executor.
public protocol EdgeDelegate: AnyObject {
    func edge(_ edge: any Edge, didReceive packet: ByteBuffer)
    func edgeDidClose(_ edge: any Edge)
}

/// Why an edge could not be created.
public enum EdgeError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The URI's scheme is not this transport's.
    case wrongScheme(expected: String, got: String)
    /// The URI's location cannot be parsed by this transport.
    case badLocation(TransportURI, reason: String)
    /// Nothing answers at that URI, or it is known to be unreachable.
    case unreachable(TransportURI, reason: String)
    /// The listener is stopped.
    case stopped

    public var description: String {
        switch self {
        case .wrongScheme(let expected, let got): return "URI scheme '\(got)' given to the \(expected) transport"
        case .badLocation(let uri, let reason): return "cannot use \(uri): \(reason)"
        case .unreachable(let uri, let reason): return "\(uri) is unreachable: \(reason)"
        case .stopped: return "the transport is stopped"
        }
    }
}
