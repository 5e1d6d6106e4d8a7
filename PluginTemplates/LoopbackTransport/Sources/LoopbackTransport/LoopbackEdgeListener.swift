import NIOCore
import WOWKit

/// The `loopback` transport's listener: one port on a `LoopbackSwitch`, like one UDP socket.
///
/// Follows the `EdgeListener` contract (WOWKit's `Sources/WOWKit/Transport/EdgeListener.swift`): every call
/// and callback on the node's executor, `createEdge` completes later and exactly once, `stop` closes every
/// edge. It demultiplexes packets into edges by the port they come from, at most one edge per remote, with
/// WOWKit's `DatagramEdgeTable`: a packet from a remote with no edge makes an inbound edge (`didAccept` first,
/// then the packet).
public final class LoopbackEdgeListener: EdgeListener {
    public var scheme: String { LoopbackTransport.scheme }
    /// `loopback://local:<port>`.
    public private(set) var localURI: TransportURI
    public var localURIs: [TransportURI] { [localURI] }
    /// The port this listener holds on its switch.
    public private(set) var port: UInt16 = 0
    /// Open edges, one per remote.
    public var edgeCount: Int { edges.count }

    let medium: LoopbackSwitch
    let scheduler: any Scheduler
    let latency: Duration
    private var delegate: (any EdgeListenerDelegate)?
    private var isRunning = false
    private var isStopped = false
    /// HOOK: key the table by what tells your remotes apart (a socket address...). One datagram from anyone
    /// makes an inbound edge, so their number is capped.
    private var edges = DatagramEdgeTable<UInt16, LoopbackEdge>(inboundLimit: 1_000)

    /// Packets this listener dropped (it was not running, the receiver's port was free, or it held
    /// `inboundLimit` inbound edges): a transport counts what it loses.
    public private(set) var droppedPackets = 0

    init(medium: LoopbackSwitch, port: UInt16?, scheduler: any Scheduler, latency: Duration) throws {
        self.medium = medium
        self.scheduler = scheduler
        self.latency = latency
        // The port is taken at once (as a socket's bind), freed by `stop`.
        let placeholder = try TransportURI("\(LoopbackTransport.scheme)://local:0")
        localURI = placeholder
        guard let port = medium.attach(self, port: port) else {
            throw EdgeError.badLocation(placeholder, reason: "port \(port.map(String.init) ?? "any") is taken on this loopback switch")
        }
        self.port = port
        localURI = try Self.uri(port: port)
    }

    static func uri(port: UInt16) throws -> TransportURI {
        try TransportURI("\(LoopbackTransport.scheme)://local:\(port)")
    }

    public func start(delegate: any EdgeListenerDelegate) throws {
        guard !isStopped else { throw EdgeError.stopped }
        self.delegate = delegate
        isRunning = true
    }

    public func createEdge(to uri: TransportURI, completion: @escaping (Result<any Edge, EdgeError>) -> Void) {
        let result: Result<UInt16, EdgeError>
        if uri.scheme != scheme {
            result = .failure(.wrongScheme(expected: scheme, got: uri.scheme))
        } else if let location = uri.hostAndPort, location.host == "local",
                  let port = UInt16(exactly: location.port), port != 0 {
            result = .success(port)
        } else {
            result = .failure(.badLocation(uri, reason: "expected \(scheme)://local:<port 1-65535>"))
        }
        // Never complete from inside `createEdge` (the contract): a datagram transport has no handshake, so
        // the edge is ready at once, on the next turn of the executor.
        scheduler.schedule(after: .zero) { [self] in
            switch result {
            case .failure(let error):
                completion(.failure(error))
            case .success(let remote):
                guard isRunning else { return completion(.failure(.stopped)) }
                // The remote's edge if it has one (its packet may have come first), else a new one.
                completion(.success(edges.edge(to: remote) {
                    LoopbackEdge(listener: self, remotePort: remote, remoteURI: uri, isInbound: false)
                }))
            }
        }
    }

    public func stop() {
        guard !isStopped else { return }
        isStopped = true
        isRunning = false
        delegate = nil
        for edge in edges.removeAll() { edge.close() }
        medium.detach(port: port)
    }

    /// Sends a packet to the listener at `remotePort`: it arrives `latency` later, unless that listener is
    /// gone by then. The hot path: no copy of the buffer, one scheduled closure per packet (a real socket
    /// transport writes to its channel here instead).
    func transmit(_ packet: ByteBuffer, to remotePort: UInt16) {
        guard isRunning, let receiver = medium.listener(at: remotePort) else {
            droppedPackets += 1
            return
        }
        let source = port
        receiver.scheduler.schedule(after: latency) { receiver.receive(packet, from: source) }
    }

    /// A packet from the listener at `remotePort`.
    private func receive(_ packet: ByteBuffer, from remotePort: UInt16) {
        guard isRunning else {
            droppedPackets += 1
            return
        }
        if let edge = edges[remotePort] {
            edge.deliver(packet)
            return
        }
        guard let remoteURI = try? Self.uri(port: remotePort) else { return }
        guard let edge = edges.accept(from: remotePort, make: {
            LoopbackEdge(listener: self, remotePort: remotePort, remoteURI: remoteURI, isInbound: true)
        }) else {
            droppedPackets += 1
            return
        }
        delegate?.edgeListener(self, didAccept: edge)
        edge.deliver(packet)
    }

    /// Called by a closing edge: the remote's next packet makes a new inbound edge.
    func remove(_ edge: LoopbackEdge) {
        edges.remove(edge, for: edge.remotePort)
    }
}
