import NIOCore
import WOWKit

/// The `pipe` transport of `wow bench alloc`: edges between listeners in one process that hand packets over
/// on the scheduler (so nodes can link), or, while `capturing`, keep what is sent in `captured` and deliver
/// nothing, so a benchmark can count what one side of the data path costs without the other.
///
/// Follows the `Edge` contract on the nodes' one scheduler. Not a plugin: nothing but the benchmark uses it.
final class PipeNetwork {
    static let scheme = "pipe"

    let scheduler: any Scheduler
    private var listeners: [String: PipeEdgeListener] = [:]
    /// While set, sent packets are appended to `captured` instead of delivered.
    var isCapturing = false
    var captured: [ByteBuffer] = []

    init(scheduler: any Scheduler) { self.scheduler = scheduler }

    func makeListener(_ name: String) -> PipeEdgeListener {
        let listener = PipeEdgeListener(network: self, name: name)
        listeners[name] = listener
        return listener
    }

    /// The edge at listener `name` whose remote is `remote`.
    func edge(at name: String, from remote: String) -> PipeEdge? { listeners[name]?.edges[remote] }

    func send(_ packet: ByteBuffer, from source: String, to destination: String) {
        if isCapturing { return captured.append(packet) }
        scheduler.schedule(after: .zero) { [self] in
            listeners[destination]?.receive(packet, from: source)
        }
    }
}

/// One end of the `pipe` transport: `pipe://<name>`.
final class PipeEdgeListener: EdgeListener {
    var scheme: String { PipeNetwork.scheme }
    let network: PipeNetwork
    let name: String
    let localURI: TransportURI
    var localURIs: [TransportURI] { [localURI] }
    private var delegate: (any EdgeListenerDelegate)?
    private(set) var edges = DatagramEdgeTable<String, PipeEdge>()

    init(network: PipeNetwork, name: String) {
        self.network = network
        self.name = name
        // A fixed, valid URI.
        localURI = try! TransportURI("\(PipeNetwork.scheme)://\(name):1")
    }

    func start(delegate: any EdgeListenerDelegate) throws { self.delegate = delegate }

    func createEdge(to uri: TransportURI, completion: @escaping (Result<any Edge, EdgeError>) -> Void) {
        let remote = uri.hostAndPort?.host ?? ""
        network.scheduler.schedule(after: .zero) { [self] in
            completion(.success(edges.edge(to: remote) {
                PipeEdge(listener: self, remote: remote, remoteURI: uri, isInbound: false)
            }))
        }
    }

    func stop() {
        delegate = nil
        for edge in edges.removeAll() { edge.close() }
    }

    func receive(_ packet: ByteBuffer, from source: String) {
        if let edge = edges[source] { return edge.deliver(packet) }
        guard let delegate, let edge = edges.accept(from: source, make: {
            PipeEdge(listener: self, remote: source, remoteURI: try! TransportURI("\(PipeNetwork.scheme)://\(source):1"),
                     isInbound: true)
        }) else { return }
        delegate.edgeListener(self, didAccept: edge)
        edge.deliver(packet)
    }

    func remove(_ edge: PipeEdge) {
        edges.remove(edge, for: edge.remote)
    }
}

/// An edge of the `pipe` transport.
final class PipeEdge: Edge {
    var transport: String { PipeNetwork.scheme }
    var localURI: TransportURI { listener.localURI }
    let remoteURI: TransportURI
    let isInbound: Bool
    private(set) var isClosed = false
    var delegate: (any EdgeDelegate)?
    let listener: PipeEdgeListener
    let remote: String

    init(listener: PipeEdgeListener, remote: String, remoteURI: TransportURI, isInbound: Bool) {
        self.listener = listener
        self.remote = remote
        self.remoteURI = remoteURI
        self.isInbound = isInbound
    }

    func send(_ packet: ByteBuffer) {
        guard !isClosed else { return }
        listener.network.send(packet, from: listener.name, to: remote)
    }

    func close() {
        guard !isClosed else { return }
        isClosed = true
        listener.remove(self)
        listener.network.scheduler.schedule(after: .zero) { [self] in
            let delegate = self.delegate
            self.delegate = nil
            delegate?.edgeDidClose(self)
        }
    }

    /// A packet from the remote, handed to the node as a transport would.
    func deliver(_ packet: ByteBuffer) {
        guard !isClosed else { return }
        delegate?.edge(self, didReceive: packet)
    }
}
