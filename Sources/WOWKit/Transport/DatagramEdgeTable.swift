/// The edges of a datagram transport's listener, one per remote endpoint (`Remote`: a socket address, a port):
/// the demultiplexing every datagram transport needs (`udp`, `memory`, the loopback plugin template).
///
/// A datagram listener has one socket for all its edges, so it tells them apart by sender:
/// - a datagram from a remote with no edge makes an inbound edge (`accept(from:make:)`; the listener then
///   reports `didAccept`, then hands over the datagram);
/// - `createEdge` to a remote that has an edge returns it (`edge(to:orMake:)`);
/// - a closing edge leaves the table (`remove(_:for:)`), so the remote's next datagram makes a new edge;
/// - `stop` takes every edge out (`removeAll`) and closes them, in the same order on every run.
///
/// `inboundLimit` caps the inbound edges: any sender, a spoofed one too, gets an edge (and the node's
/// attention) with one datagram. A value type, used on the listener's executor only.
public struct DatagramEdgeTable<Remote: Hashable, E: Edge> {
    // Inlinable lookups: a transport's per-datagram lookup is specialized in its module, as its own
    // dictionary was.
    @usableFromInline var edges: [Remote: E] = [:]
    /// Inbound edges held now.
    public private(set) var inboundCount = 0
    /// The most inbound edges held at once; `accept` refuses new remotes beyond it.
    public let inboundLimit: Int

    /// An empty table; no limit on inbound edges unless given.
    public init(inboundLimit: Int = .max) {
        self.inboundLimit = inboundLimit
    }

    /// Edges held now.
    @inlinable public var count: Int { edges.count }

    /// Every edge held, in no particular order.
    public var all: Dictionary<Remote, E>.Values { edges.values }

    /// The edge of `remote`, if any: the lookup for every datagram received.
    @inlinable public subscript(remote: Remote) -> E? { edges[remote] }

    /// The edge to `remote` for a `createEdge`: the one it has, else `make()`'s (a new outbound edge), added.
    public mutating func edge(to remote: Remote, orMake make: () -> E) -> E {
        if let existing = edges[remote] { return existing }
        let edge = make()
        add(edge, for: remote)
        return edge
    }

    /// For a datagram from `remote`, which has no edge: the new inbound edge `make()` returns, added; nil, and
    /// nothing made, when `inboundLimit` inbound edges are held already (the caller drops the datagram).
    public mutating func accept(from remote: Remote, make: () -> E) -> E? {
        assert(edges[remote] == nil, "accept(from:) for a remote that has an edge")
        guard inboundCount < inboundLimit else { return nil }
        let edge = make()
        add(edge, for: remote)
        return edge
    }

    /// Removes `edge` if it is still the edge of `remote` (called by a closing edge; a newer one stays).
    public mutating func remove(_ edge: E, for remote: Remote) {
        guard let held = edges[remote], held === edge else { return }
        edges[remote] = nil
        if edge.isInbound { inboundCount -= 1 }
    }

    /// Removes every edge and returns them ordered by `areInIncreasingOrder`, for `stop` to close: a fixed
    /// order keeps runs replayable. Close them after this returns (a closing edge calls `remove`).
    public mutating func removeAll(sortedBy areInIncreasingOrder: (E, E) -> Bool) -> [E] {
        let all = edges.values.sorted(by: areInIncreasingOrder)
        edges.removeAll()
        inboundCount = 0
        return all
    }

    private mutating func add(_ edge: E, for remote: Remote) {
        edges[remote] = edge
        if edge.isInbound { inboundCount += 1 }
    }
}

extension DatagramEdgeTable where Remote: Comparable {
    /// Removes every edge and returns them ordered by remote, for `stop` to close (see `removeAll(sortedBy:)`).
    public mutating func removeAll() -> [E] {
        let all = edges.sorted { $0.key < $1.key }.map(\.value)
        edges.removeAll()
        inboundCount = 0
        return all
    }
}
