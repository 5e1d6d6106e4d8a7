import NIOCore
import WOWKit

/// The `memory` transport's listener: one per host:port of a `MemoryNetwork`, like one UDP socket. Made by
/// `MemoryNetwork.makeListener(host:port:)`.
///
/// It demultiplexes edges by the remote endpoint packets come from (a `DatagramEdgeTable`): at most one edge
/// per remote. A packet from a remote with no edge makes an inbound edge if the delegate admits it
/// (`edgeListener(_:admit:from:)`, as the udp transport asks; an answer it gives goes back, nothing is kept
/// otherwise): the delegate's `didAccept` first, then the packet to the edge's delegate. `createEdge` returns the existing edge for that remote if there is
/// one when its completion runs, else a new outbound edge; it needs no handshake, so the completion runs at
/// the same virtual instant, scheduled. Follows the `EdgeListener` contract: everything on the simulation's
/// thread, no callback from inside a call.
///
/// The listener holds its delegate strongly until `stop`, and the network holds the listener until then.
public final class MemoryEdgeListener: EdgeListener {
    /// `memory`, or `memory-stream` for a stream listener.
    public let scheme: String
    /// Whether this listener is connection-oriented (`memory-stream`): see `MemoryNetwork.makeStreamListener`.
    let isStream: Bool

    let network: MemoryNetwork
    let local: MemoryEndpoint
    /// `memory://<host>:<port>`: for a NATed host, private (unreachable from other hosts).
    public let localURI: TransportURI
    /// Whether `start` was called and `stop` not yet.
    public private(set) var isRunning = false
    private var isStopped = false
    private var delegate: (any EdgeListenerDelegate)?
    private var edges = DatagramEdgeTable<MemoryEndpoint, MemoryEdge>()
    /// Public URIs peers reported, most recent last.
    private var observedURIs: [TransportURI] = []

    /// At most this many learned public URIs are kept.
    public static let maximumObservedURIs = 4

    init(network: MemoryNetwork, local: MemoryEndpoint, isStream: Bool = false) {
        self.network = network
        self.local = local
        self.isStream = isStream
        self.scheme = isStream ? MemoryTransport.streamScheme : MemoryTransport.scheme
        self.localURI = local.uri(scheme: scheme)
    }

    /// The local URI, then the public URIs peers reported that differ from it (at most 4, most recent last).
    public var localURIs: [TransportURI] { [localURI] + observedURIs }

    /// The edges open now, one per remote.
    public var edgeCount: Int { edges.count }

    public func start(delegate: any EdgeListenerDelegate) throws {
        guard !isStopped else { throw EdgeError.stopped }
        self.delegate = delegate
        isRunning = true
    }

    public func createEdge(to uri: TransportURI, completion: @escaping (Result<any Edge, EdgeError>) -> Void) {
        let result: Result<MemoryEndpoint, EdgeError>
        if uri.scheme != scheme {
            result = .failure(.wrongScheme(expected: scheme, got: uri.scheme))
        } else if let remote = MemoryEndpoint(location: uri) {
            result = isRunning ? .success(remote) : .failure(.stopped)
        } else {
            result = .failure(.badLocation(uri, reason: "expected \(scheme)://<host>:<port>, a positive integer host and a port 0-65535"))
        }
        if isStream, case .success(let remote) = result {
            // A connection: it succeeds or fails after the handshake's round trip.
            return network.connectStream(from: local, to: remote) { [self] outcome in
                guard isRunning else { return completion(.failure(.stopped)) }
                if let reason = outcome { return completion(.failure(.unreachable(uri, reason: reason))) }
                completion(.success(outboundEdge(to: remote, uri: uri)))
            }
        }
        network.scheduler.scheduleUncancellable(after: .zero) { [self] in
            switch result {
            case .failure(let error):
                completion(.failure(error))
            case .success(let remote):
                // Checked again now: the listener may have stopped, or the remote's first packet made an edge.
                guard isRunning else { return completion(.failure(.stopped)) }
                completion(.success(outboundEdge(to: remote, uri: uri)))
            }
        }
    }

    /// The edge to `remote`: the one it has, else a new outbound edge.
    private func outboundEdge(to remote: MemoryEndpoint, uri: TransportURI) -> MemoryEdge {
        edges.edge(to: remote) { MemoryEdge(listener: self, remote: remote, remoteURI: uri, isInbound: false) }
    }

    public var observedURIsAreMappings: Bool { !isStream }

    /// Records a public URI a peer sees this listener at (its NAT mapping), if it is a `memory` URI other than
    /// the local one; a repeated one moves to the end.
    public func learnObservedURI(_ uri: TransportURI) {
        // A stream's observed URI is its connection's source port, which accepts nothing (as with tcp).
        guard !isStream, uri.scheme == scheme, uri != localURI else { return }
        observedURIs.removeAll { $0 == uri }
        observedURIs.append(uri)
        if observedURIs.count > MemoryEdgeListener.maximumObservedURIs { observedURIs.removeFirst() }
    }

    /// Closes every edge (each reports `edgeDidClose`, scheduled), frees the port and accepts nothing more.
    public func stop() {
        guard !isStopped else { return }
        isStopped = true
        isRunning = false
        delegate = nil
        for edge in edges.removeAll() { edge.close() }
        network.removeListener(self)
    }

    /// A packet the network delivers from `source` (as the NATs left it).
    func receive(_ packet: ByteBuffer, from source: MemoryEndpoint) {
        if let edge = edges[source] {
            edge.deliver(packet)
            return
        }
        guard let delegate else { return }
        switch delegate.edgeListener(self, admit: packet, from: { source.uri(scheme: scheme) }) {
        case .accept: break
        case .drop: return
        case .reply(let answer): return send(answer, to: source)
        }
        guard let edge = edges.accept(from: source, make: {
            MemoryEdge(listener: self, remote: source, remoteURI: source.uri(scheme: scheme), isInbound: true)
        }) else { return }
        delegate.edgeListener(self, didAccept: edge)
        edge.deliver(packet)
    }

    func send(_ packet: ByteBuffer, to remote: MemoryEndpoint) {
        if isStream {
            network.sendStream(packet, from: local, to: remote)
        } else {
            network.send(packet, from: local, to: remote)
        }
    }

    /// The other end of a stream closed it (`MemoryNetwork.closeStream`): so does ours.
    func streamClosed(by remote: MemoryEndpoint) {
        edges[remote]?.close()
    }

    /// Called by a closing edge: the remote's next packet makes a new edge.
    func remove(_ edge: MemoryEdge) {
        edges.remove(edge, for: edge.remote)
    }
}
