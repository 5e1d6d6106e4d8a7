import Logging
import NIOCore

/// One overlay node: the shell that runs its state machines against real edges and timers.
///
/// Protocol decisions live in value types that take events and return directives: `Linker` (the outbound link
/// handshake), `LinkResponder` (link requests, the race rules, traffic on edges without a connection, `close`),
/// `Connector` (Connect-To-Me), `Liveness`, `PublicURIs`, `Router` and `SecureChannel`. The node feeds them what
/// its transports and timers report and carries out what they return (`run(_:)`). It reaches the world only
/// through the `EdgeListener`s the registry builds and the injected `Scheduler` and random generator, so the
/// same code runs in the simulator (memory transport, virtual time) and for real. It is confined to one
/// executor: every method and every callback must run there, and it is not `Sendable`.
public final class Node {
    public let config: NodeConfig
    public let address: Address
    public let logger: Logger
    let scheduler: any Scheduler
    /// The node's random generator, shared with its secured edges' handshakes.
    let randomSource: RandomSource
    var random: SeededRandom {
        get { randomSource.generator }
        _modify { yield &randomSource.generator }
    }

    public internal(set) var table: ConnectionTable
    public internal(set) var stats = NodeStats()
    /// Application data exchanged with each remote node (overlords read it as `OverlordContext.traffic`).
    public internal(set) var traffic = TrafficLedger()
    public private(set) var isRunning = false
    /// When `start` ran.
    public private(set) var startedAt: Timestamp = .zero
    /// The node's clock (virtual time in the simulator).
    public var now: Timestamp { scheduler.now }

    /// Application data delivered to this node (header, payload). Called on the node's executor.
    public var onDeliver: ((RoutedHeader, ByteBuffer) -> Void)?
    /// A routing error about a packet this node sent.
    public var onRoutingError: ((RoutingError) -> Void)?
    /// Called after any change to the connection table.
    public var onTableChange: ((Node) -> Void)?
    /// Every routed packet this node forwards for others, as it leaves (diagnostics and tests: what a router
    /// sees of other nodes' traffic). Called on the node's executor; keep it cheap.
    public var onForward: ((RoutedPacket) -> Void)?
    /// Told of link latencies and delivered hop counts as they happen (metrics). Held weakly.
    public weak var observer: (any NodeObserver)?
    /// The node's interface on the virtual network, when it has one (for its status). Held weakly.
    public internal(set) weak var virtualInterface: VirtualInterface?

    private let transportRegistry: TransportRegistry
    private let overlordRegistry: OverlordRegistry
    private(set) var listeners: [any EdgeListener] = []
    private var overlords: [any ConnectionOverlord] = []
    var edges = EdgeTable()
    var linker: Linker
    var responder: LinkResponder
    var connector: Connector
    let liveness: Liveness
    var pathWatch: PathWatch
    var publicURIs = PublicURIs()
    /// Set when the host moved to another network: the next NAT mapping a peer reports is the new network's,
    /// and the peers behind NATs are then asked to link back (`networkChanged`).
    var awaitsNewMapping = false
    /// Whether a second public node was asked to link (a leaf) for its view of our NAT mapping
    /// (`askSecondView`); again after the host moves.
    var askedSecondView = false
    /// The transport whose edges are tunnelled through the overlay (relay), if the node runs one.
    var tunnelListener: (any OverlayTunnelListener)?
    /// What the node keeps up for its tunnelled connections; only while it runs a tunnelling transport.
    var relay: RelayUpkeep?
    /// The direct connections tunnel frames cross, which trims leave open while they do.
    var tunnelCarriers: TunnelCarriers
    /// What peers said of themselves: static handshake keys (a first init carries the link request), NATs that
    /// map per peer (relay at once).
    var peerReports = PeerReports()
    /// Owners of `.linkToURIs` attempts, by attempt token.
    var uriLinkOwners: [UInt64: (owner: OverlordID, uris: [TransportURI])] = [:]
    /// Armed timers by purpose; cancelled on stop.
    var timers: [NodeTimer: TimerHandle] = [:]
    /// Which peer lately reported each node as its neighbour (`Status`, link and Connect-To-Me replies): the way
    /// to a node this one cannot route to yet (`route`).
    var heardOf: [Address: Address] = [:]
    /// Overlay echoes (`wow ping`) waiting for replies.
    var echoes = PendingEchoes()
    /// The node's part in the name service (secured nodes only): records kept, answers, lookups.
    var names = NameService()

    private var pendingEvents: [(OverlordEvent, only: OverlordID?)] = []
    /// Packets a joining node sends behind its leaf link request (see `route`), at most `joinQueueLimit` (each
    /// retry of the request sends them all again, in the handshake's first message on a secured edge).
    var joinQueue: [RoutedPacket] = []
    static let joinQueueLimit = 16
    /// Own packets waiting for a route while the node's place in the ring forms (see `route`).
    var held = HeldPackets()
    /// When the node last joined its ring (nil: not yet).
    var joinedRingAt: Timestamp?
    private var isDispatching = false
    private var lastSharedNeighbours: [Address] = []

    /// What the node's secured edges share (its credentials, session limits, clock); nil when it runs without
    /// security, and then its edges are not wrapped.
    let edgeSecurity: EdgeSecurity?
    /// End-to-end sessions with the nodes this node exchanges data with over the ring; nil without security.
    var endToEnd: EndToEndSessions?
    /// When the armed `endToEndRetransmit` timer fires.
    var endToEndRetransmitAt: Timestamp?
    /// Seconds since 1970, for certificate validity. The simulator runs it on virtual time.
    public var wallClock: () -> Int64 = SystemClock.unixTime {
        didSet { edgeSecurity?.wallClock = wallClock }
    }
    /// Microseconds since 1970 (virtual time in the simulator): the stamps of the node's handshake inits
    /// (`StaticHandshakeKey`). Setting it starts the static key anew (nothing stamped before is taken).
    public var stampClock: () -> UInt64 = SystemClock.unixMicroseconds {
        didSet { edgeSecurity?.staticKey.clock = stampClock }
    }
    /// Whether the operator was told that this node's own certificate is no longer valid.
    var ownCertificateWarned = false
    /// Packets from remotes without an edge, on a secured node: what is admitted, what answered.
    var strangers = StrangerAdmission()
    /// How often refusals of strangers are logged (one limit for all of them).
    var strangerRefusals = RefusalRateLimit()

    /// How long a Connect-To-Me may take before its overlord hears it failed.
    public var connectTimeout: Duration {
        get { connector.timeout }
        set { connector.timeout = newValue }
    }

    public init(config: NodeConfig, scheduler: any Scheduler, random: SeededRandom,
                transports: TransportRegistry, overlords: OverlordRegistry,
                logger: Logger = Logger(label: "wow.node")) {
        self.config = config
        self.address = config.resolvedAddress
        self.scheduler = scheduler
        self.randomSource = RandomSource(random)
        self.transportRegistry = transports
        self.overlordRegistry = overlords
        self.table = ConnectionTable(localAddress: config.resolvedAddress)
        self.linker = Linker(settings: config.linking)
        self.responder = LinkResponder(local: config.resolvedAddress)
        self.connector = Connector(local: config.resolvedAddress)
        self.liveness = Liveness(settings: config.liveness, linking: config.linking)
        self.tunnelCarriers = TunnelCarriers(idleAfter: config.liveness.deadAfter)
        self.pathWatch = PathWatch(failoverAfter: config.liveness.failoverAfter,
                                   retryInterval: config.linking.directRetryInterval)
        var logger = logger
        logger[metadataKey: "node"] = "\(config.resolvedAddress.short)"
        self.logger = logger
        if case .secured(let secured) = config.security {
            edgeSecurity = EdgeSecurity(credentials: secured.credentials, settings: secured.channel, scheduler: scheduler,
                                        wallClock: SystemClock.unixTime, random: randomSource, logger: logger)
            endToEnd = EndToEndSessions()
        } else {
            edgeSecurity = nil
        }
    }

    /// This node as others should know it: its address and every URI its transports can be reached at.
    public var info: NodeInfo {
        if let cachedInfo { return cachedInfo }
        let fresh = NodeInfo(address: address, uris: publicURIs.advertised(from: listeners.flatMap(\.localURIs)),
                             handshakeKey: edgeSecurity?.staticKey.publicKey, mapsPerPeer: publicURIs.mapsPerPeer)
        cachedInfo = fresh
        isFounder = isFounder || config.bootstrap.allSatisfy { fresh.uris.contains($0) || ownURIs.contains($0) }
        return fresh
    }
    /// Recomputed when a transport may have learned a new URI.
    var cachedInfo: NodeInfo?

    /// URIs peers reported seeing this node at (its public, NAT-mapped addresses).
    public var observedURIs: Set<TransportURI> { publicURIs.observedSet }
    /// Set once a peer saw this node at a URI its transport is bound to (no NAT in between).
    public var isReachableDirectly: Bool { publicURIs.isReachableDirectly }

    // MARK: - Lifecycle

    /// Builds and starts the configured transports and overlords. Throws on an unknown plugin or bad settings.
    public func start() throws {
        guard !isRunning else { return }
        var built: [any EdgeListener] = []
        for entry in config.transports {
            // Each transport logs under its own label (`wow.udp`, ...) at the node's level.
            var transportLogger = Logger(label: "wow.\(entry.name)")
            transportLogger.logLevel = logger.logLevel
            let context = TransportContext(scheduler: scheduler, random: random.split(), logger: transportLogger,
                                           eventLoop: (scheduler as? EventLoopScheduler)?.eventLoop)
            built.append(try transportRegistry.makeListener(scheme: entry.name, settings: entry.settings, context: context))
        }
        var builtOverlords: [any ConnectionOverlord] = []
        for entry in config.overlords {
            builtOverlords.append(try overlordRegistry.makeOverlord(name: entry.name, settings: entry.settings))
        }
        tunnelListener = built.lazy.compactMap { $0 as? any OverlayTunnelListener }.first
        tunnelListener?.attach(host: self)
        relay = tunnelListener.map { RelayUpkeep(scheme: $0.scheme, retryInterval: config.linking.directRetryInterval,
                                                          local: config.resolvedAddress) }
        for (index, listener) in built.enumerated() {
            do {
                try listener.start(delegate: self)
            } catch {
                // Leave nothing half-started behind.
                for started in built[..<index] { started.stop() }
                throw error
            }
        }
        listeners = built
        cachedInfo = nil
        overlords = builtOverlords
        isRunning = true
        startedAt = scheduler.now
        for (index, overlord) in overlords.enumerated() { arm(.overlordTick(OverlordID(index)), after: overlord.tickInterval) }
        arm(.liveness, after: liveness.nextRound(random: &random))
        if listeners.contains(where: \.followsInterfaceAddresses) { arm(.interfaceCheck, after: Node.interfaceCheckInterval) }
        if edgeSecurity != nil {
            arm(.securityCheck, after: Node.securityCheckInterval)
            arm(.namePublish, after: Node.namePublishRetry)
        }
        post(.started)
    }

    /// Stops the node. Graceful: tells every peer with a `Close` first; otherwise (a crash) just goes silent.
    public func stop(graceful: Bool = true) {
        guard isRunning else { return }
        if graceful {
            // Goodbyes through a forwarder go before the forwarder's own: once it has ours, it drops the
            // tunnel frames that follow on that edge as coming from no connection.
            let isTunnelled = { (c: Connection) in self.edges[c.edgeID]?.transportEdge is any TunnelledEdge }
            for connection in table.connections.filter(isTunnelled) + table.connections.filter({ !isTunnelled($0) }) {
                send(.close(Close(reason: .shutdown, message: "node shutting down")), on: connection.edgeID)
            }
        }
        isRunning = false
        for timer in timers.values { timer.cancel() }
        timers.removeAll()
        let unanswered = echoes.waiting.values
        echoes = PendingEchoes()
        for echo in unanswered { echo.completion(.failure(.notRunning)) }
        let lookups = names.cancelAll()
        names = NameService(settings: names.settings)
        for lookup in lookups { lookup(.failure(NameLookupTimeout(name: ""))) }
        connector.reset()
        responder.reset()
        for record in edges.all { record.edge.delegate = nil }
        // A crash (not graceful) says no goodbye, but its sockets still close, as the kernel would close them.
        for (_, record) in edges.sorted { record.edge.close() }
        for listener in listeners { listener.stop() }
        edges.removeAll()
        table = ConnectionTable(localAddress: address)
        relay?.reset()
        tunnelCarriers.reset()
        pathWatch.reset()
        heardOf.removeAll()
        held.removeAll()
        endToEnd?.removeAll()
        traffic.removeAll()
    }

    /// URIs that turned out to lead back to this node (a bootstrap list that names the node itself).
    var ownURIs: Set<TransportURI> = []

    /// Whether this node is part of a ring: it has structured connections, or it founded its ring (it has
    /// no bootstrap URI other than its own).
    public var isRingMember: Bool {
        if table.hasStructured { return true }
        if isFounder { return true }
        let own = Set(info.uris).union(ownURIs)
        return config.bootstrap.allSatisfy { own.contains($0) }
    }

    /// Set once the node finds it has nowhere to bootstrap but itself.
    private var isFounder = false

    // MARK: - Application traffic

    /// Sends application data through the overlay.
    public func send(data: ByteBuffer, to destination: Address, mode: DeliveryMode = .exact, ttl: UInt8 = RoutedHeader.defaultTTL) {
        if mode == .exact {
            noteTraffic(with: destination, bytes: data.readableBytes, isSent: true)
            if let edgeID = directEdge(to: destination, ttl: ttl) { return send(data, directlyTo: destination, ttl: ttl, on: edgeID) }
        }
        if endToEnd != nil, mode == .exact, destination != address,
           !table.contains(destination) || pathWatch.isSilent(destination) {
            // Not a direct peer (or one whose path went silent, so the packet detours over the ring): sealed end
            // to end, so the nodes on the way see the routing header only.
            return sendEndToEnd(data, to: destination, ttl: ttl)
        }
        let header = RoutedHeader(ttl: ttl, mode: mode, payloadType: .data, source: address, destination: destination)
        route(RoutedPacket(header: header, payload: data), previous: nil)
    }

    /// The edge of our connection to `destination` when our exact-mode packet for it goes straight there: what
    /// `route` decides for a direct peer whose path answers (`Router.decide`: forward to it; not sealed end to
    /// end). Nil otherwise (ourselves, a node further away, a silent path): then `route` decides.
    private func directEdge(to destination: Address, ttl: UInt8) -> EdgeID? {
        guard ttl > 0, destination != address, !pathWatch.isSilent(destination) else { return nil }
        return table.edgeID(to: destination)
    }

    /// `route`'s forward to a direct peer, for a packet of ours (`directEdge`): one hop.
    private func send(_ data: ByteBuffer, directlyTo destination: Address, ttl: UInt8, on edgeID: EdgeID) {
        let header = RoutedHeader(hops: 1, ttl: ttl, mode: .exact, payloadType: .data, source: address,
                                  destination: destination)
        assert(Router.decide(header, at: address, table: table, previous: nil) == .forward(to: destination),
               "the direct path must be the one route takes")
        logger.trace("route", metadata: ["type": "data", "mode": "exact", "dst": "\(destination.short)", "decision": "direct"])
        send(routed: RoutedPacket(header: header, payload: data), on: edgeID)
    }

    /// Counts one application packet exchanged with `peer` (exact mode, either way, sealed end to end or not)
    /// and tells the overlords of the first packets of a flow with a node that is not a direct peer, so a
    /// strategy can link to it at once. Hot path: one dictionary update; an event only while the flow is new.
    func noteTraffic(with peer: Address, bytes: Int, isSent: Bool) {
        guard peer != address else { return }
        let now = scheduler.now
        let recent = traffic.record(peer, bytes: bytes, isSent: isSent, at: now)
        guard recent <= TrafficLedger.announcedPackets, isRunning, !table.contains(peer),
              let flow = traffic.traffic(with: peer, at: now) else { return }
        post(.dataExchanged(with: peer, flow))
    }

    // MARK: - Timers

    /// Arms `timer` to fire after `delay`, replacing it if it is armed.
    func arm(_ timer: NodeTimer, after delay: Duration) {
        timers[timer]?.cancel()
        timers[timer] = scheduler.schedule(after: delay) { [weak self] in
            guard let self, self.isRunning else { return }
            self.timers[timer] = nil
            self.fire(timer)
        }
    }

    private func fire(_ timer: NodeTimer) {
        switch timer {
        case .overlordTick(let id):
            post(.tick, only: id)
            arm(timer, after: overlords[id.index].tickInterval)
        case .liveness:
            checkLiveness()
            traffic.forgetIdle(at: scheduler.now)
            arm(.liveness, after: liveness.nextRound(random: &random))
        case .pathCheck:
            checkPaths()
        case .status:
            keepForwarders()
            shareNeighboursIfChanged()
            handOverNames()
        case .interfaceCheck:
            checkInterfaceAddresses()
            arm(.interfaceCheck, after: Node.interfaceCheckInterval)
        case .securityCheck:
            checkPeerCertificates()
            names.sweep(unixTime: wallClock(), now: scheduler.now)
            arm(.securityCheck, after: Node.securityCheckInterval)
        case .linkAttempt(let token):
            let edge = linker.attempt(token: token)?.edge
            perform(linker.timerFired(token: token, edgeAnswered: edge.flatMap { securedEdge($0) }?.isEstablished ?? false))
        case .linkFallback(let token):
            perform(linker.fallbackTimerFired(token: token))
        case .connect(let token):
            run(connector.timerFired(token: token, servedByAttempt: linker.servedConnects.contains(token)))
        case .echo(let token):
            echoTimedOut(token)
        case .namePublish:
            publishName()
        case .nameLookup(let token):
            nameLookupTimedOut(token)
        case .heldPackets:
            routeHeldPackets()
        case .endToEndRetransmit:
            retransmitEndToEnd()
        }
    }

    // MARK: - Overlord events and actions

    func post(_ event: OverlordEvent, only: OverlordID? = nil) {
        pendingEvents.append((event, only))
        guard !isDispatching else { return }
        isDispatching = true
        while !pendingEvents.isEmpty && isRunning {
            let (next, target) = pendingEvents.removeFirst()
            for index in overlords.indices where target == nil || target == OverlordID(index) {
                var context = OverlordContext(local: info, table: table, now: scheduler.now, random: random,
                                              bootstrap: config.bootstrap, traffic: traffic)
                let actions = overlords[index].handle(next, context: &context)
                random = context.random
                for action in actions { perform(action, owner: OverlordID(index)) }
            }
        }
        pendingEvents.removeAll()
        isDispatching = false
    }

    private func perform(_ action: OverlordAction, owner: OverlordID) {
        switch action {
        case .connect(let request):
            connect(request, owner: owner)
        case .linkToURIs(let uris, let type):
            let token = random.next()
            uriLinkOwners[token] = (owner, uris)
            startAttempt(AttemptStart(token: token, type: type, target: nil, uris: uris, purpose: .own(connectToken: nil)))
        case .trim(let peer, let type):
            trim(peer, type: type)
        }
    }

    func connect(_ request: ConnectRequest, owner: OverlordID) {
        stats.connectsRequested += 1
        var linksDirectly = false
        if let peer = request.peer {
            linksDirectly = peer.address != address && !table.contains(peer.address) && linker.attempt(to: peer.address) == nil
            // The overlord's word for the peer (a neighbour list's, say): its key, if the peer gave none itself.
            peerReports.noteHearsay(peer)
        }
        let facts = Connector.ConnectFacts(
            info: info, existing: request.mode == .exact ? table.connection(to: request.target) : nil,
            linksDirectly: linksDirectly, gateway: table.hasStructured ? nil : Router.gateway(in: table))
        run(connector.connect(request, owner: owner, facts: facts, random: &random))
    }

    func trim(_ peer: Address, type: ConnectionType) {
        guard var connection = table.connection(to: peer), connection.localTypes.contains(type) else { return }
        logger.debug("trim", metadata: ["peer": "\(peer.short)", "type": "\(type)", "connection": "\(connection)"])
        connection.localTypes.remove(type)
        if Self.isUnwanted(connection), !tunnelCarriers.keepsOpen(peer, at: scheduler.now) {
            closeUnwanted(connection, message: "\(type) no longer needed")
        } else {
            table.upsert(connection)
            tableChanged()
        }
    }

    /// Whether neither end wants the connection any more (a joiner's `leaf` is its own business).
    static func isUnwanted(_ connection: Connection) -> Bool {
        connection.localTypes.isEmpty && connection.remoteTypes.subtracting([.leaf]).isEmpty
    }

    private func closeUnwanted(_ connection: Connection, message: String) {
        send(.close(Close(reason: .trimmed, message: message)), on: connection.edgeID)
        removeConnection(connection.address, reason: "trimmed")
        // The peer routes over the connection until our close reaches it: what it sent meanwhile is still
        // taken (the edge drains), and the peer closes the edge, or the liveness sweep does.
        release(connection.edgeID, from: connection.address)
    }

    /// Closes the connections a trim left open for their tunnel frames once none cross them any more.
    private func closeIdleTunnelCarriers(at now: Timestamp) {
        for peer in tunnelCarriers.sweep(at: now) {
            guard let connection = table.connection(to: peer), Self.isUnwanted(connection) else { continue }
            closeUnwanted(connection, message: "no tunnel frames cross it any more")
        }
    }

    // MARK: - Status (neighbour sharing)

    func tableChanged() {
        // A tunnelling transport's URIs name this node's direct peers.
        if tunnelListener != nil { cachedInfo = nil }
        onTableChange?(self)
        if !held.isEmpty { routeHeldPackets() }
        if endToEnd != nil, held.isForming(joinedAt: joinedRingAt, now: scheduler.now) { resendEndToEndInits() }
        // Coalesce a burst of changes into one round of status messages.
        if timers[.status] == nil { arm(.status, after: .milliseconds(50)) }
    }

    private func shareNeighboursIfChanged() {
        let nearest = table.nearestNeighbours(perSide: config.sharedNeighboursPerSide)
        let addresses = nearest.map(\.address)
        guard addresses != lastSharedNeighbours else { return }
        lastSharedNeighbours = addresses
        let status = EdgeMessage.status(Status(neighbours: sharedNeighbours(nearest, for: nil)))
        for connection in nearest { send(status, on: connection.edgeID) }
    }

    /// How long a connection counts as new for `sharedNeighbours`.
    static let newConnectionWindow: Duration = .seconds(10)

    /// The neighbours a status, link reply or CTM reply shares, with the handshake keys the receiver is about
    /// to need: every key for a receiver new to us (a joiner, a fresh link; `receiver` nil: status, sent to
    /// several), else those of neighbours new themselves (a joiner its ring neighbours are about to link to).
    /// Settled nodes know each other's keys: sent on every ring check and relink as well, they cost the NAT
    /// mix 10% more idle bytes (1,000 nodes, seed 1: 52 -> 57 B/s per connection).
    func sharedNeighbours(_ neighbours: [Connection], for receiver: Address?) -> [NodeInfo] {
        let now = scheduler.now
        let receiverIsNew = receiver.map { table.connection(to: $0).map { Node.isNew($0, at: now) } ?? true } ?? false
        return Node.sharing(neighbours, allKeys: receiverIsNew, at: now)
    }

    /// `neighbours` as a list shares them: with every handshake key if `allKeys`, else with those of new
    /// connections only.
    static func sharing(_ neighbours: [Connection], allKeys: Bool, at now: Timestamp) -> [NodeInfo] {
        neighbours.map { connection in
            guard !allKeys, !isNew(connection, at: now) else { return connection.peer }
            var info = connection.peer
            info.handshakeKey = nil
            return info
        }
    }

    private static func isNew(_ connection: Connection, at now: Timestamp) -> Bool {
        now - connection.createdAt < newConnectionWindow
    }

    // MARK: - Liveness

    private func checkLiveness() {
        let now = scheduler.now
        // Connection by connection, a relayed one retrying its direct edge right after its own liveness check
        // (the order the simulator replays).
        for connection in table.connections {
            run(liveness.round(connections: [connection], edges: [], at: now))
            retryDirectEdge(for: connection, at: now)
            retryLeftPath(for: connection, at: now)
        }
        closeIdleTunnelCarriers(at: now)
        let idleEdges = edges.sorted.map { (id: $0.id, idleSince: $0.record.releasedAt ?? $0.record.openedAt) }
        run(liveness.round(connections: [], edges: idleEdges, at: now))
    }
}
