import Logging
import NIOCore
import NIOPosix
import NIOSSL
import WOWKit

/// The listener of the stream transports: `tcp`, and `tls` (the same edges inside TLS 1.3). One listening TCP
/// socket on the node's event loop; each connection is one edge (`TCPEdge`), framed by a 2-byte big-endian
/// length per packet (`TCPFrameDecoder`).
///
/// Contract (the `EdgeListener` one, on real sockets):
/// - Every call and callback happens on `eventLoop`, the node's. `start` may also be called from another
///   thread, which then waits while the loop binds; everything else must be called on the loop.
/// - `start` binds and listens at once, or throws `TCPTransportError.bindFailed` naming the address and the
///   operating system's reason (e.g. the port is in use). `boundAddress` / `port` tell where it listens
///   (useful with port 0).
/// - Each accepted connection becomes an inbound edge (`remoteURI` = the peer socket's `scheme://ip:port`),
///   announced by the delegate's `didAccept` once it is up (for `tls`, once the TLS handshake completed).
/// - `createEdge(to: scheme://ip:port)` connects (IP literals only: no DNS lookups yet) and completes, always
///   later, with the edge once it is up, or with `EdgeError.unreachable` (refused, timed out after
///   `connectTimeout` — the whole connect and handshake —, reset, TLS failure), `.badLocation`, `.wrongScheme`
///   or `.stopped`. Every call makes a new connection.
/// - With a proxy (`ProxyPolicy`), an outbound connection goes to the proxy (its host name, if it has one,
///   resolved at each connect), which is asked to `CONNECT` to the peer (`HTTPConnectHandler`); the edge is up
///   once the proxy opened the tunnel and, for `tls`, the TLS handshake with the peer completed, all within
///   `connectTimeout`. A proxy that refuses makes the edge unreachable with a reason that names the proxy and
///   its status (`HTTPProxyError`), counted in `proxyFailures`; a proxy that cannot be reached or wants
///   credentials (407, or 401) is also logged as a warning, once while it repeats.
/// - A peer violating the framing (a frame of length 0 or over `maximumPacketSize`) or failing TLS has its
///   connection closed; it is counted (`drops`, `tlsFailures`).
/// - At most `inboundLimits` inbound connections are open at once (1,024 in all, 64 from one IP address, in
///   their TLS handshake or up): beyond that an accepted connection is closed at once (`inbound_limit`). On
///   Linux an address that holds its share is also put in the listening socket's filter
///   (`SocketFilter.droppingSources`): its SYNs die in the kernel until one of its connections ends, so a
///   connection flood from it costs the node nothing but the filter's updates. An
///   inbound TLS handshake must complete within `connectTimeout`; an edge that never links is closed by the
///   node's liveness sweep.
/// - `localURIs`: the advertised URIs, then the bound address if specific, else the host's non-loopback
///   interface addresses of the socket's family and the loopback address last. Observed URIs are not learned:
///   a peer sees the ephemeral port of our outbound connection, where nobody listens.
/// - `stop` closes every edge (each reports `edgeDidClose`, scheduled), fails the `createEdge`s in progress with
///   `.stopped`, closes the listening socket and accepts nothing more.
///
/// The listener holds its delegate strongly until `stop`, and its socket holds the listener until then. Call
/// `stop` before dropping it. Its `eventLoop` must be a NIOPosix one (`MultiThreadedEventLoopGroup`).
public final class TCPEdgeListener: EdgeListener {
    /// Why the listener dropped a packet or refused a peer's bytes.
    public enum DropReason: String, CaseIterable, DropCounterReason {
        /// `send` of a packet over `maximumPacketSize` bytes.
        case oversized
        /// `send` of an empty packet (a frame of length 0 is not allowed).
        case empty
        /// Sent on, or received for, an edge that was already closed.
        case edgeClosed = "edge_closed"
        /// Sent while `maximumQueuedBytes` already waited for the socket.
        case backpressure
        /// A packet arrived on a connection not yet up (cannot happen with NIO's ordering; counted if it does).
        case beforeReady = "before_ready"
        /// A peer sent a frame of length 0: its connection was closed.
        case emptyFrame = "empty_frame"
        /// A peer announced a frame over `maximumPacketSize`: its connection was closed.
        case frameTooLong = "frame_too_long"
        /// A connection ended in the middle of a frame.
        case truncatedFrame = "truncated_frame"
        /// An inbound connection closed at once: `inboundLimits` inbound connections were open already, in
        /// all or from its IP address.
        case inboundLimit = "inbound_limit"

        public var slot: Int? {
            switch self {
            case .oversized: return 0
            case .empty: return 1
            case .edgeClosed: return 2
            case .backpressure: return 3
            case .beforeReady: return 4
            case .emptyFrame: return 5
            case .frameTooLong: return 6
            case .truncatedFrame: return 7
            case .inboundLimit: return 8
            }
        }
    }

    /// Bytes queued on one connection beyond which sends are dropped (`backpressure`), and below half of which
    /// they are taken again (NIO's write-buffer water marks).
    public static let maximumQueuedBytes = 1 << 20

    /// The URI scheme: `tcp` or `tls`.
    public let scheme: String
    /// The node's event loop: the sockets', and where everything of this listener happens.
    public let eventLoop: any EventLoop
    /// The largest packet sent or accepted (65,535 bytes, the most a 2-byte length can say).
    public let maximumPacketSize: Int
    /// How long a `createEdge` may take (connect and, for `tls`, handshake), and an inbound TLS handshake.
    public let connectTimeout: TimeAmount
    /// URIs listed first in `localURIs`.
    public let advertise: [TransportURI]

    private let listenEndpoint: IPEndpoint
    /// The TLS layer of the `tls` transport; nil for plain `tcp`.
    private let security: (any TCPConnectionSecurity)?
    /// Which outbound edges go through an HTTP proxy.
    let proxyPolicy: ProxyPolicy
    /// The last reason an edge through the proxy failed, so that a failure that repeats is logged once.
    private var lastProxyFailure: String?
    private var logger: Logger

    /// Whether `start` succeeded and `stop` was not called yet.
    public private(set) var isRunning = false
    private var isStopped = false
    private var delegate: (any EdgeListenerDelegate)?
    /// The listening socket's channel, once NIO adopted it.
    private var serverChannel: (any Channel)?
    private var edges: [ObjectIdentifier: TCPEdge] = [:]
    private var attempts: [ObjectIdentifier: TCPOutboundAttempt] = [:]
    /// Inbound connections not yet up (in their TLS handshake).
    private var pendingInbound: [ObjectIdentifier: any Channel] = [:]
    /// The most inbound connections open at once (in their handshake or up), in all and from one IP address:
    /// a flood of connections, from one host or many, costs the node a bounded number of sockets. Many nodes
    /// behind one NAT share an address, hence the generous share per address.
    var inboundLimits = (total: 1024, perAddress: 64)
    /// Open inbound connections by channel, with the peer's IP address, and how many each address has.
    private var inboundAddresses: [ObjectIdentifier: String] = [:]
    private var inboundPerAddress: [String: Int] = [:]
    /// Addresses at their share of inbound connections, whose packets the listening socket's filter drops
    /// until one of their connections ends. Empty where the kernel cannot filter (`filtersSources` false).
    private(set) var blockedSources: [String: SocketAddress] = [:]
    /// Whether addresses at their share are filtered in the kernel (on Linux, until the kernel refuses once).
    var filtersSources = SocketFilter.isAvailable
    /// Whether the listening socket has had a filter: connections accepted since may have inherited it (Linux
    /// copies a listener's filter to each new connection), so each drops its copy.
    private var listenerWasFiltered = false
    /// Whether `createEdge` is running (its completion must then wait).
    private var isCreatingEdge = false

    /// The address it listens on (with the actual port when `listen` gave port 0); nil before `start`.
    public private(set) var boundAddress: SocketAddress?
    /// The port it listens on; nil before `start`.
    public var port: Int? { boundAddress?.port }
    /// A URI of this listener for edges whose socket address is unknown: the first address URI.
    public private(set) var primaryURI: TransportURI
    /// The URIs of the bound address or, for a wildcard, of the interfaces (loopback last); set in `start`.
    private var addressURIs: [TransportURI] = []

    // MARK: Counters

    /// Packets received on edges, and their bytes (without the length prefix).
    public private(set) var packetsReceived = 0
    public private(set) var bytesReceived = 0
    /// Packets queued for sending, and their bytes (without the length prefix).
    public private(set) var packetsSent = 0
    public private(set) var bytesSent = 0
    /// Inbound connections that became edges.
    public private(set) var connectionsAccepted = 0
    /// Outbound connections that became edges.
    public private(set) var connectionsOpened = 0
    /// `createEdge`s that failed as `.unreachable`.
    public private(set) var connectFailures = 0
    /// Connections closed by a TLS error (a failed handshake, e.g. a peer that does not speak TLS).
    public private(set) var tlsFailures = 0
    /// Outbound connections the proxy refused (a status other than 2xx), answered badly, or closed before
    /// answering.
    public private(set) var proxyFailures = 0
    /// Outbound connections that went through the proxy and became edges.
    public private(set) var connectionsProxied = 0
    /// Drops so far by reason.
    public private(set) var drops = DropCounter<DropReason>()
    /// Times an address reached its share of inbound connections and the kernel began to drop its SYNs.
    public private(set) var sourcesBlocked = 0
    public var dropsByReason: [String: Int] { drops.byName }

    /// The edges open now.
    public var edgeCount: Int { edges.count }
    /// Inbound connections not yet up (tests look into their pipelines).
    var pendingInboundChannels: [any Channel] { Array(pendingInbound.values) }

    // MARK: Life cycle

    /// A plain `tcp` listener that will listen on `settings.listen` on `eventLoop` in `start`. Throws
    /// `TCPTransportError.badListenAddress` if `listen` is not an IP literal with a port.
    public convenience init(settings: TCPTransport.Settings, eventLoop: any EventLoop, logger: Logger) throws {
        // tcp follows only its own `proxy` setting, never the environment.
        let proxy = try ProxyPolicy(setting: settings.proxy, followsEnvironment: false, environment: [:])
        try self.init(scheme: TCPTransport.scheme, listen: settings.listen, advertise: settings.advertise,
                      connectTimeoutMilliseconds: settings.connectTimeoutMilliseconds, security: nil,
                      proxy: proxy, eventLoop: eventLoop, logger: logger)
    }

    /// A listener of `scheme`, its connections inside `security` when given (TLS for `tls`), its outbound
    /// edges through the proxies `proxy` names. `maximumPacketSize` is lowered only by tests.
    init(scheme: String, listen: String, advertise: [TransportURI], connectTimeoutMilliseconds: Int,
         security: (any TCPConnectionSecurity)?, proxy: ProxyPolicy = .direct, eventLoop: any EventLoop, logger: Logger,
         maximumPacketSize: Int = WireFormat.maximumPacketSize) throws {
        do {
            listenEndpoint = try IPEndpoint(parsing: listen)
        } catch {
            throw TCPTransportError.badListenAddress(transport: scheme, listen, reason: error.reason)
        }
        self.scheme = scheme
        self.advertise = advertise
        self.connectTimeout = .milliseconds(Int64(max(1, connectTimeoutMilliseconds)))
        self.security = security
        self.proxyPolicy = proxy
        self.eventLoop = eventLoop
        self.maximumPacketSize = min(maximumPacketSize, Int(UInt16.max))
        self.logger = logger
        self.logger[metadataKey: "transport"] = "\(scheme)"
        self.primaryURI = listenEndpoint.uri(scheme: scheme) ?? TCPEdgeListener.unknownURI
    }

    deinit {
        serverChannel?.close(promise: nil)
    }

    public func start(delegate: any EdgeListenerDelegate) throws {
        if eventLoop.inEventLoop {
            try startOnLoop(delegate: delegate)
        } else {
            // Everything of the listener happens on its loop; this thread only waits.
            let bound = NIOLoopBound((listener: self, delegate: delegate), eventLoop: eventLoop)
            try eventLoop.submit { try bound.value.listener.startOnLoop(delegate: bound.value.delegate) }.wait()
        }
    }

    private func startOnLoop(delegate: any EdgeListenerDelegate) throws {
        guard !isStopped else { throw EdgeError.stopped }
        guard !isRunning else { return }
        let socket = try TCPListeningSocket.open(listenEndpoint, transport: scheme)
        let me = NIOLoopBound(self, eventLoop: eventLoop)
        let bootstrap = ServerBootstrap(group: eventLoop)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.writeBufferWaterMark,
                                value: .init(low: TCPEdgeListener.maximumQueuedBytes / 2, high: TCPEdgeListener.maximumQueuedBytes))
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try me.value.configureInbound(channel) }
            }
        // NIO adopts the socket (and listens again, harmlessly) at once; only the registration is queued on the
        // loop, and it does not fail for a good socket.
        var immediateFailure: (any Error)?
        bootstrap.withBoundSocket(socket.handle).assumeIsolated().whenComplete { [self] result in
            switch result {
            case .success(let channel):
                if isStopped { channel.close(promise: nil) } else { serverChannel = channel }
            case .failure(let error):
                immediateFailure = error
                if isRunning {
                    logger.error("listening socket failed", metadata: ["error": "\(error)"])
                }
            }
        }
        if let immediateFailure {
            throw TCPTransportError.bindFailed(transport: scheme, address: socket.bound.description, reason: "\(immediateFailure)")
        }
        boundAddress = socket.bound.address
        addressURIs = localAddressURIs(of: socket.bound)
        primaryURI = addressURIs.first ?? primaryURI
        self.delegate = delegate
        isRunning = true
        logger.info("listening", metadata: ["address": "\(socket.bound)"])
        if let proxy = proxyPolicy.proxy {
            logger.info("outbound edges through an HTTP proxy",
                        metadata: ["proxy": "\(proxy)", "from": "\(proxyPolicy.source)"])
        }
    }

    /// The bound address if specific; for a wildcard, the interface addresses of its family, loopback last.
    private func localAddressURIs(of bound: IPEndpoint) -> [TransportURI] {
        do {
            return try bound.reachableEndpoints().compactMap { $0.uri(scheme: scheme) }
        } catch {
            logger.warning("cannot list network interfaces", metadata: ["error": "\(error)"])
            return bound.loopbackEndpoint.flatMap { $0.uri(scheme: scheme) }.map { [$0] } ?? []
        }
    }

    public var followsInterfaceAddresses: Bool { boundAddress.map { IPEndpoint($0).isWildcard } ?? false }

    public func refreshLocalAddresses(ignoring hosts: Set<String>) -> Bool {
        guard isRunning, let bound = boundAddress.map(IPEndpoint.init), bound.isWildcard,
              let fresh = IPEndpoint.changedAddressURIs(localAddressURIs(of: bound), from: addressURIs,
                                                        scheme: scheme, ignoring: hosts)
        else { return false }
        addressURIs = fresh
        primaryURI = fresh.first ?? primaryURI
        return true
    }

    /// The advertised URIs, then the bound address (or the interface addresses, loopback last).
    public var localURIs: [TransportURI] {
        var uris = advertise
        for uri in addressURIs where !uris.contains(uri) { uris.append(uri) }
        return uris
    }

    /// Closes every edge (each reports `edgeDidClose`, scheduled), fails the `createEdge`s in progress with
    /// `.stopped` (scheduled), closes the listening socket and accepts nothing more.
    public func stop() {
        guard !isStopped else { return }
        isStopped = true
        isRunning = false
        delegate = nil
        // Sorted, so that the closes are reported in the same order on every run.
        let open = edges.values.sorted { ($0.remoteURI, $0.localURI) < ($1.remoteURI, $1.localURI) }
        edges.removeAll()
        for edge in open { edge.close() }
        for channel in pendingInbound.values { channel.close(promise: nil) }
        pendingInbound.removeAll()
        let pending = attempts.values.sorted { $0.uri < $1.uri }
        attempts.removeAll()
        for attempt in pending {
            attempt.channel?.close(promise: nil)
            if let completion = attempt.takeCompletion() {
                eventLoop.assumeIsolated().execute { completion(.failure(.stopped)) }
            }
        }
        serverChannel?.close(promise: nil)
        serverChannel = nil
        logger.info("stopped")
    }

    // MARK: Edges

    public func createEdge(to uri: TransportURI, completion: @escaping (Result<any Edge, EdgeError>) -> Void) {
        let endpoint: IPEndpoint
        do {
            endpoint = try IPEndpoint(uri: uri, scheme: scheme)
        } catch {
            eventLoop.assumeIsolated().execute { completion(.failure(error)) }
            return
        }
        guard isRunning else {
            eventLoop.assumeIsolated().execute { completion(.failure(.stopped)) }
            return
        }
        let attempt = TCPOutboundAttempt(uri: uri, completion: completion)
        attempt.proxy = proxyPolicy.proxy(for: endpoint)
        attempts[ObjectIdentifier(attempt)] = attempt
        let me = NIOLoopBound(self, eventLoop: eventLoop)
        let boundAttempt = NIOLoopBound(attempt, eventLoop: eventLoop)
        var bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(connectTimeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(.writeBufferWaterMark,
                           value: .init(low: TCPEdgeListener.maximumQueuedBytes / 2, high: TCPEdgeListener.maximumQueuedBytes))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let attempt = boundAttempt.value
                    attempt.channel = channel
                    try me.value.addHandlers(to: channel, role: .outbound(attempt), target: endpoint)
                }
            }
        let firstHop = attempt.proxy?.endpoint ?? (attempt.proxy == nil ? endpoint : nil)
        if let firstHop, let source = boundAddress.flatMap({ IPEndpoint($0).outboundSource(toward: firstHop) }) {
            bootstrap = bootstrap.bind(to: source)
        }
        let timeout = connectTimeout
        attempt.timeout = eventLoop.assumeIsolated().scheduleTask(in: timeout) { [self] in
            let through = attempt.proxy.map { " through proxy \($0)" } ?? ""
            fail(attempt, reason: "timed out after \(timeout.nanoseconds / 1_000_000) ms\(through)")
        }
        // On loopback the connect may succeed or fail at once, inside this call: `finish` then defers the
        // completion (see there).
        isCreatingEdge = true
        defer { isCreatingEdge = false }
        let connected: EventLoopFuture<any Channel>
        if let proxy = attempt.proxy {
            if let address = proxy.endpoint?.address {
                connected = bootstrap.connect(to: address)
            } else {
                connected = bootstrap.connect(host: proxy.host, port: proxy.port)
            }
        } else {
            connected = bootstrap.connect(to: endpoint.address)
        }
        connected.assumeIsolated().whenFailure { [self] error in
            let reason = TCPOutboundAttempt.describe(error, timeout: timeout)
            guard let proxy = attempt.proxy else { return fail(attempt, reason: reason) }
            // Not reaching the proxy at all is the operator's to fix, whatever the peer.
            let text = "proxy \(proxy): \(reason)"
            warnAboutProxy(text, proxy: proxy.description)
            fail(attempt, reason: text)
        }
    }

    /// Sets up an accepted connection's pipeline (from the server bootstrap's child initializer).
    private func configureInbound(_ channel: any Channel) throws {
        guard isRunning else { throw EdgeError.stopped }
        let address = channel.remoteAddress?.ipAddress ?? "?"
        guard inboundAddresses.count < inboundLimits.total, inboundPerAddress[address, default: 0] < inboundLimits.perAddress else {
            drops.count(.inboundLimit)
            throw EdgeError.stopped
        }
        inboundAddresses[ObjectIdentifier(channel)] = address
        inboundPerAddress[address, default: 0] += 1
        if listenerWasFiltered { try? SocketFilter.detach(from: channel) }
        if inboundPerAddress[address] == inboundLimits.perAddress, filtersSources, let remote = channel.remoteAddress {
            blockedSources[address] = remote
            sourcesBlocked += 1
            updateSourceFilter()
        }
        // However it ends (refused in its handshake, closed as an edge, the listener stopping), it leaves the count.
        channel.closeFuture.assumeIsolated().whenComplete { [self] _ in releaseInbound(channel) }
        try addHandlers(to: channel, role: .inbound, target: nil)
        pendingInbound[ObjectIdentifier(channel)] = channel
    }

    /// The proxy's `CONNECT` (an outbound connection through a proxy, to `target`), the security layer (TLS
    /// for `tls`), the frame decoder and the connection handler.
    private func addHandlers(to channel: any Channel, role: TCPConnectionHandler.Role, target: IPEndpoint?) throws {
        let pipeline = channel.pipeline.syncOperations
        if case .outbound(let attempt) = role, let proxy = attempt.proxy, let target {
            try pipeline.addHandler(HTTPConnectHandler(proxy: proxy, target: target))
        }
        if let security {
            switch role {
            case .inbound: try pipeline.addHandler(security.makeServerHandler())
            case .outbound: try pipeline.addHandler(try security.makeClientHandler())
            }
        }
        try pipeline.addHandler(ByteToMessageHandler(TCPFrameDecoder(maximumFrameLength: maximumPacketSize)))
        try pipeline.addHandler(TCPConnectionHandler(listener: self, role: role, waitsForHandshake: security != nil))
    }

    // MARK: From the connections

    /// An inbound connection is up: announce its edge.
    func accept(_ edge: TCPEdge) {
        pendingInbound[ObjectIdentifier(edge.channel)] = nil
        guard isRunning, let delegate else { return edge.close() }
        edges[ObjectIdentifier(edge)] = edge
        connectionsAccepted += 1
        delegate.edgeListener(self, didAccept: edge)
    }

    private func releaseInbound(_ channel: any Channel) {
        guard let address = inboundAddresses.removeValue(forKey: ObjectIdentifier(channel)) else { return }
        let left = (inboundPerAddress[address] ?? 1) - 1
        inboundPerAddress[address] = left > 0 ? left : nil
        if blockedSources.removeValue(forKey: address) != nil { updateSourceFilter() }
    }

    /// Gives the listening socket the filter for `blockedSources` (none when it is empty). Where the kernel
    /// refuses, filtering stops for good, with a warning: the caps still hold, by closing at once.
    private func updateSourceFilter() {
        guard let serverChannel, isRunning else { return }
        do {
            if blockedSources.isEmpty {
                try SocketFilter.detach(from: serverChannel)
            } else {
                let (program, left) = SocketFilter.droppingSources(blockedSources.values)
                try SocketFilter.attach(program, as: SocketFilter.attachFilter, to: serverChannel)
                listenerWasFiltered = true
                if left > 0 {
                    logger.debug("source filter full", metadata: ["left_out": "\(left)"])
                }
            }
        } catch {
            logger.warning("cannot filter the listening socket; addresses over their share are closed after accept",
                           metadata: ["error": "\(error)"])
            filtersSources = false
            blockedSources.removeAll()
        }
    }

    /// An inbound connection ended (or was refused) before it was up.
    func inboundConnectionDidEnd(_ channel: any Channel) {
        pendingInbound[ObjectIdentifier(channel)] = nil
    }

    /// An outbound connection is up: complete its `createEdge`.
    func connected(_ attempt: TCPOutboundAttempt, edge: TCPEdge) {
        attempts[ObjectIdentifier(attempt)] = nil
        edges[ObjectIdentifier(edge)] = edge
        connectionsOpened += 1
        if attempt.proxy != nil {
            connectionsProxied += 1
            lastProxyFailure = nil
        }
        finish(attempt, .success(edge))
    }

    /// An outbound connection failed before it was up: complete its `createEdge` with `.unreachable`, if not
    /// done yet.
    func fail(_ attempt: TCPOutboundAttempt, reason: String) {
        guard attempt.isPending else { return }
        attempts[ObjectIdentifier(attempt)] = nil
        connectFailures += 1
        logger.debug("connect failed", metadata: ["uri": "\(attempt.uri)", "reason": "\(reason)"])
        finish(attempt, .failure(.unreachable(attempt.uri, reason: reason)))
        // Closed after the attempt ended: closing an open connection reports its end at once, which must not
        // replace this reason (a timeout in the TLS handshake or in the proxy's answer) with its own.
        attempt.channel?.close(promise: nil)
    }

    /// Runs the attempt's completion: at once, or, inside `createEdge`, as the loop's next task. That task runs
    /// before the loop next polls the sockets (the new connection's first read comes from a later poll), so
    /// no packet can reach the edge before the node has set its delegate in the completion.
    private func finish(_ attempt: TCPOutboundAttempt, _ result: Result<any Edge, EdgeError>) {
        guard let completion = attempt.takeCompletion() else { return }
        guard isCreatingEdge else { return completion(result) }
        eventLoop.assumeIsolated().execute { [self] in
            if case .success(let edge) = result, edge.isClosed {
                // Closed meanwhile (the listener stopped, or the peer went): nobody has seen it, so report that.
                completion(.failure(isRunning ? .unreachable(attempt.uri, reason: "the connection closed at once") : .stopped))
            } else {
                completion(result)
            }
        }
    }

    /// An error on a connection (which the handler then closes): counted by kind.
    func connectionReported(_ error: any Error, wasUp: Bool) {
        switch error {
        case TCPFrameDecoder.FrameError.emptyFrame: countDrop(.emptyFrame)
        case TCPFrameDecoder.FrameError.frameTooLong: countDrop(.frameTooLong)
        case TCPFrameDecoder.FrameError.truncatedAtClose: countDrop(.truncatedFrame)
        case is NIOSSLError, is BoringSSLError: tlsFailures += 1
        case let error as HTTPProxyError:
            proxyFailures += 1
            // A proxy that wants credentials (407, or 401 from tinyproxy for wrong ones) refuses every peer: the
            // operator must hear of it. Other refusals (a peer's private address, a port the proxy's rules
            // forbid) are a peer's URI failing, as without a proxy.
            if case .refused(let proxy, _, let status, _) = error, status == 401 || status == 407 {
                warnAboutProxy(error.description, proxy: proxy)
            }
        default: break
        }
        logger.debug("connection error", metadata: ["error": "\(error)", "up": "\(wasUp)"])
    }

    /// Logs a problem with the proxy itself as a warning, once while the same one repeats (edges are retried
    /// often); a connection through the proxy that works resets it.
    private func warnAboutProxy(_ reason: String, proxy: String) {
        guard reason != lastProxyFailure else { return }
        lastProxyFailure = reason
        logger.warning("cannot connect through the proxy", metadata: ["proxy": "\(proxy)", "reason": "\(reason)"])
    }

    /// Called by a closing edge.
    func remove(_ edge: TCPEdge) {
        edges[ObjectIdentifier(edge)] = nil
    }

    func countDrop(_ reason: DropReason) { drops.count(reason) }

    func countSent(bytes: Int) {
        packetsSent += 1
        bytesSent += bytes
    }

    func countReceived(bytes: Int) {
        packetsReceived += 1
        bytesReceived += bytes
    }

    private static let unknownURI: TransportURI = {
        do { return try TransportURI("tcp://0.0.0.0:0") } catch { preconditionFailure("constant URI: \(error)") }
    }()
}
