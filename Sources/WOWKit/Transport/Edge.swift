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
    func send(_ packet: ByteBuffer)
    func close()
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
