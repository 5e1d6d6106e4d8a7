import Logging
import NIOCore

/// One overlay node: its transports, connection table, link handshake, Connect-To-Me, router, liveness and
/// link strategies, wired together.
///
/// The node is I/O-free in the sense that matters: it reaches the world only through the `EdgeListener`s the
/// registry builds and the injected `Scheduler` and random generator, so the same code runs in the simulator
/// (memory transport, virtual time) and for real. It is confined to one executor: every method and every
/// callback must run there, and it is not `Sendable`.
public final class Node {
    public let config: NodeConfig
    public let address: Address
    public let logger: Logger
    let scheduler: any Scheduler
    var random: SeededRandom

    public private(set) var table: ConnectionTable
    public internal(set) var stats = NodeStats()
    /// Application data exchanged with each remote node (overlords read it as `OverlordContext.traffic`).
    public private(set) var traffic = TrafficLedger()
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
    var linker: Linker
    /// The transport whose edges are tunnelled through the overlay (relay), if the node runs one.
    private var tunnelListener: (any OverlayTunnelListener)?
    /// The connections that are not tunnelled, when some are (tunnel frames may only cross these).
    private var directTableCache: (revision: Int, table: ConnectionTable)?
    /// Set once a peer saw this node at a URI its transport is bound to (no NAT in between): then, unless a
    /// stateful firewall blocks what it did not ask for, anyone can reach it directly.
    public private(set) var isReachableDirectly = false
    /// Every URI peers ever reported seeing this node at.
    private var everObserved: Set<TransportURI> = []
    /// Up to two peers that reported each observed URI.
    private var observedReporters: [TransportURI: Set<Address>] = [:]
    /// Relink attempts made after a peer said it no longer knows our edge: if they fail, the connection goes.
    private var reclaims: Set<UInt64> = []
    /// When the node last tried to replace a tunnelled connection by a direct edge, and how many tries failed
    /// since, by peer.
    private var relinkTries: [Address: (at: Timestamp, count: Int)] = [:]

    struct EdgeRecord {
        var edge: any Edge
        var openedAt: Timestamp
        /// When we last told the remote end that this edge carries no connection (rate limit).
        var notLinkedSentAt: Timestamp?
        /// When we last refused the remote end's handshake or plaintext (rate limit for the refusal and its log).
        var refusedAt: Timestamp?
        /// The peer whose connection moved from this edge to another, or was trimmed here, and when: the peer may
        /// still send here for a moment, so the edge stays open a while and what arrives on it is taken as that
        /// peer's connection traffic (see `release`).
        var formerPeer: Address?
        var releasedAt: Timestamp?
    }
    var edges: [EdgeID: EdgeRecord] = [:]
    var edgeIDs: [ObjectIdentifier: EdgeID] = [:]
    private var nextEdgeNumber: UInt64 = 0

    private struct PendingConnect {
        var request: ConnectRequest
        var owner: Int
        var timer: TimerHandle
    }
    private var pendingConnects: [UInt64: PendingConnect] = [:]
    /// Recently finished connects (token -> type): a CTM recipient's link request that arrives after the
    /// connect finished still carries our token and links on our behalf, not its own.
    private var finishedConnects: [UInt64: ConnectionType] = [:]
    private var finishedOrder: [UInt64] = []
    /// Owners of `.linkToURIs` attempts, by attempt token.
    private var uriLinkOwners: [UInt64: (owner: Int, uris: [TransportURI])] = [:]
    private var attemptTimers: [UInt64: TimerHandle] = [:]
    /// Recurring timers (overlord ticks, liveness, status), by purpose; cancelled on stop.
    var timers: [String: TimerHandle] = [:]

    private var pendingEvents: [(OverlordEvent, only: Int?)] = []
    /// Packets a joining node sends behind its leaf link request (see `route`).
    private var joinQueue: [RoutedPacket] = []
    private var isDispatching = false
    private var statusScheduled = false
    private var lastSharedNeighbours: [Address] = []

    /// The node's credentials and session limits when it is secured; nil when it runs without security.
    var security: (credentials: NodeCredentials, settings: SecureChannel.Settings)?
    /// The secure session of each edge (secured nodes only).
    var edgeChannels: [EdgeID: SecureChannel] = [:]
    /// End-to-end sessions with the nodes this node exchanges data with over the ring.
    var peerChannels: [Address: SecureChannel] = [:]
    /// Where edge frames are opened: one buffer, reused for every frame once the last plaintext is let go.
    var edgePlaintext = ByteBuffer()
    /// Seconds since 1970, for certificate validity. The simulator runs it on virtual time.
    public var wallClock: () -> Int64 = SystemClock.unixTime
    /// Whether the operator was told that this node's own certificate is no longer valid.
    var ownCertificateWarned = false

    /// How long a Connect-To-Me may take before its overlord hears it failed.
    public var connectTimeout: Duration = .seconds(10)

    public init(config: NodeConfig, scheduler: any Scheduler, random: SeededRandom,
                transports: TransportRegistry, overlords: OverlordRegistry,
                logger: Logger = Logger(label: "wow.node")) {
        self.config = config
        self.address = config.resolvedAddress
        self.scheduler = scheduler
        self.random = random
        self.transportRegistry = transports
        self.overlordRegistry = overlords
        self.table = ConnectionTable(localAddress: config.resolvedAddress)
        self.linker = Linker(settings: config.linking)
        var logger = logger
        logger[metadataKey: "node"] = "\(config.resolvedAddress.short)"
        self.logger = logger
        if case .secured(let secured) = config.security { security = (secured.credentials, secured.channel) }
    }

    /// This node as others should know it: its address and every URI its transports can be reached at.
    public var info: NodeInfo {
        if let cachedInfo { return cachedInfo }
        // URIs that peers saw us at come first, newest first: behind a NAT they are the ones others can reach.
        let all = listeners.flatMap(\.localURIs)
        let observed = observedOrder.filter { all.contains($0) }
        let fresh = NodeInfo(address: address, uris: observed + all.filter { !observedURIs.contains($0) })
        cachedInfo = fresh
        isFounder = isFounder || config.bootstrap.allSatisfy { fresh.uris.contains($0) || ownURIs.contains($0) }
        return fresh
    }
    /// Recomputed when a transport may have learned a new URI.
    var cachedInfo: NodeInfo?

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
        for (index, overlord) in overlords.enumerated() { scheduleTick(overlord: index, after: overlord.tickInterval) }
        scheduleLiveness()
        if security != nil { scheduleSecurityCheck() }
        post(.started)
    }

    /// Stops the node. Graceful: tells every peer with a `Close` first; otherwise (a crash) just goes silent.
    public func stop(graceful: Bool = true) {
        guard isRunning else { return }
        if graceful {
            for connection in table.connections {
                send(.close(Close(reason: .shutdown, message: "node shutting down")), on: connection.edgeID)
            }
        }
        isRunning = false
        for timer in timers.values { timer.cancel() }
        for timer in attemptTimers.values { timer.cancel() }
        for pending in pendingConnects.values { pending.timer.cancel() }
        timers.removeAll()
        attemptTimers.removeAll()
        pendingConnects.removeAll()
        repliesAwaitingPunch.removeAll()
        for record in edges.values { record.edge.delegate = nil }
        // A crash (not graceful) says no goodbye, but its sockets still close, as the kernel would close them.
        for record in edges.values { record.edge.close() }
        for listener in listeners { listener.stop() }
        edges.removeAll()
        edgeIDs.removeAll()
        table = ConnectionTable(localAddress: address)
        directTableCache = nil
        relinkTries.removeAll()
        edgeChannels.removeAll()
        peerChannels.removeAll()
        reclaims.removeAll()
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
        if mode == .exact { noteTraffic(with: destination, bytes: data.readableBytes, isSent: true) }
        if security != nil, mode == .exact, destination != address, !table.contains(destination) {
            // Not a direct peer: sealed end to end, so the nodes on the way see the routing header only.
            return sendEndToEnd(data, to: destination, ttl: ttl)
        }
        let header = RoutedHeader(ttl: ttl, mode: mode, payloadType: .data, source: address, destination: destination)
        route(RoutedPacket(header: header, payload: data), previous: nil)
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

    func schedule(after delay: Duration, _ action: @escaping (Node) -> Void) -> TimerHandle {
        let handle = scheduler.schedule(after: delay) { [weak self] in
            guard let self, self.isRunning else { return }
            action(self)
        }
        return handle
    }

    private func scheduleTick(overlord index: Int, after delay: Duration) {
        timers["tick\(index)"] = schedule(after: delay) { node in
            node.post(.tick, only: index)
            node.scheduleTick(overlord: index, after: node.overlords[index].tickInterval)
        }
    }

    private func scheduleLiveness() {
        let interval = config.liveness.pingInterval / 3
        // Spread nodes' liveness rounds so they do not all fire at once.
        let jitter = Duration.nanoseconds(Int64(random.unit() * Double(interval.nanoseconds)))
        timers["liveness"] = schedule(after: interval + jitter / 4) { node in
            node.checkLiveness()
            node.traffic.forgetIdle(at: node.scheduler.now)
            node.scheduleLiveness()
        }
    }

    // MARK: - Overlord events and actions

    private func post(_ event: OverlordEvent, only: Int? = nil) {
        pendingEvents.append((event, only))
        guard !isDispatching else { return }
        isDispatching = true
        while !pendingEvents.isEmpty && isRunning {
            let (next, target) = pendingEvents.removeFirst()
            for index in overlords.indices where target == nil || target == index {
                var context = OverlordContext(local: info, table: table, now: scheduler.now, random: random,
                                              bootstrap: config.bootstrap, traffic: traffic)
                let actions = overlords[index].handle(next, context: &context)
                random = context.random
                for action in actions { perform(action, owner: index) }
            }
        }
        pendingEvents.removeAll()
        isDispatching = false
    }

    private func perform(_ action: OverlordAction, owner: Int) {
        switch action {
        case .connect(let request):
            connect(request, owner: owner)
        case .linkToURIs(let uris, let type):
            let token = random.next()
            uriLinkOwners[token] = (owner, uris)
            startAttempt(token: token, type: type, target: nil, uris: uris, purpose: .own(connectToken: nil))
        case .trim(let peer, let type):
            trim(peer, type: type)
        }
    }

    private func trim(_ peer: Address, type: ConnectionType) {
        guard var connection = table.connection(to: peer), connection.localTypes.contains(type) else { return }
        logger.debug("trim", metadata: ["peer": "\(peer.short)", "type": "\(type)", "connection": "\(connection)"])
        connection.localTypes.remove(type)
        if connection.localTypes.isEmpty && connection.remoteTypes.subtracting([.leaf]).isEmpty {
            send(.close(Close(reason: .trimmed, message: "\(type) no longer needed")), on: connection.edgeID)
            removeConnection(peer, reason: "trimmed")
            // The peer routes over the connection until our close reaches it: what it sent meanwhile is still
            // taken (the edge drains), and the peer closes the edge, or the liveness sweep does.
            release(connection.edgeID, from: peer)
        } else {
            table.upsert(connection)
            tableChanged()
        }
    }

    // MARK: - Connect-To-Me

    private func connect(_ request: ConnectRequest, owner: Int) {
        stats.connectsRequested += 1
        if request.mode == .exact, let existing = table.connection(to: request.target) {
            let connection = addLocalType(request.type, to: existing, token: random.next())
            post(.connectSucceeded(request, connection), only: owner)
            return
        }
        let token = random.next()
        let timer = schedule(after: connectTimeout) { node in
            node.failConnect(token, reason: "no connection within \(node.connectTimeout)")
        }
        pendingConnects[token] = PendingConnect(request: request, owner: owner, timer: timer)
        // Link directly when the peer's URIs are known, and send the CTM too: if we cannot reach the peer
        // (NAT), its linking back to us opens the way. Not to a peer we are connected to already (a directional
        // CTM may name one): a request on a new edge would move the connection there; the CTM's answer adds
        // the type on the connection's own edge.
        if let peer = request.peer, peer.address != address, !table.contains(peer.address),
           linker.attempt(to: peer.address) == nil {
            startAttempt(token: random.next(), type: request.type, target: peer.address, uris: peer.uris,
                         purpose: .own(connectToken: token))
        }
        let gateway = table.hasStructured ? nil : Router.gateway(in: table)
        let ctm = ConnectToMe(token: token, type: request.type, requester: info, gateway: gateway)
        let header = RoutedHeader(mode: request.mode, payloadType: .connectToMe, source: address, destination: request.target)
        route(RoutedPacket(header: header, payload: ctm.encoded()), previous: nil)
    }

    private func rememberFinished(_ token: UInt64, type: ConnectionType) {
        finishedConnects[token] = type
        finishedOrder.append(token)
        if finishedOrder.count > 1024 {
            finishedConnects[finishedOrder.removeFirst()] = nil
        }
    }

    private func failConnect(_ token: UInt64, reason: String) {
        guard let pending = pendingConnects.removeValue(forKey: token) else { return }
        pending.timer.cancel()
        rememberFinished(token, type: pending.request.type)
        stats.connectsFailed += 1
        post(.connectFailed(pending.request, reason: reason), only: pending.owner)
    }

    private func succeedConnect(_ token: UInt64, with connection: Connection) {
        guard let pending = pendingConnects.removeValue(forKey: token) else { return }
        pending.timer.cancel()
        rememberFinished(token, type: pending.request.type)
        post(.connectSucceeded(pending.request, connection), only: pending.owner)
    }

    /// Adds one of our types to an existing connection and tells the peer with a link request on the same edge
    /// (the peer merges it; the reply is not needed).
    private func addLocalType(_ type: ConnectionType, to existing: Connection, token: UInt64) -> Connection {
        var connection = existing
        let isNew = !connection.localTypes.contains(type)
        connection.localTypes.insert(type)
        table.upsert(connection)
        if isNew {
            let request = LinkRequest(token: token, type: type, requester: info, target: connection.address,
                                      observedURI: connection.remoteURI)
            send(.linkRequest(request), on: connection.edgeID)
            post(.connectionAdded(connection))
            tableChanged()
        }
        return connection
    }

    private func handleConnectToMe(_ ctm: ConnectToMe, header: RoutedHeader) {
        let requester = ctm.requester.address
        logger.trace("ctm", metadata: ["from": "\(requester.short)", "mode": "\(header.mode)", "type": "\(ctm.type)"])
        guard requester != address else { return }
        if ctm.type == .relink {
            // The requester's NAT rebound, or it wants a direct edge for our relayed connection: link to its
            // direct URIs while it links to ours, keeping the connection.
            let uris = ctm.requester.uris.filter { $0.scheme != tunnelListener?.scheme }
            if table.contains(requester), linker.attempt(to: requester) == nil, !uris.isEmpty {
                startAttempt(token: ctm.token, type: .relink, target: requester, uris: uris, purpose: .forPeer)
            }
            return
        }
        let reply = ConnectToMeReply(token: ctm.token, requester: requester, type: ctm.type, responder: info,
                                     neighbours: table.nearestNeighbours(perSide: config.sharedNeighboursPerSide).map(\.peer))
        let replyHeader = RoutedHeader(mode: .exact, payloadType: .connectToMeReply, source: address,
                                       destination: ctm.gateway ?? requester)
        let replyPacket = RoutedPacket(header: replyHeader, payload: reply.encoded())
        post(.neighboursLearned([ctm.requester], from: requester))
        if let existing = table.connection(to: requester) {
            route(replyPacket, previous: nil)
            // Already connected: tell the requester on the existing edge, with the CTM's token so it can match.
            var connection = existing
            connection.remoteTypes.insert(ctm.type)
            table.upsert(connection)
            let request = LinkRequest(token: ctm.token, type: ctm.type, requester: info, target: requester,
                                      observedURI: connection.remoteURI)
            send(.linkRequest(request), on: connection.edgeID)
        } else {
            // The requester links to us as soon as our reply arrives, to the URIs it gave now; its request must
            // find our NAT punched toward it. So the attempt (ours already, or a new one) punches there first,
            // and the reply waits until the attempt's edge is open and punched on.
            let token: UInt64
            if let ours = linker.attempt(to: requester) {
                token = ours.token
                perform(linker.peerWillLink(token: token, uris: ctm.requester.uris))
            } else {
                token = ctm.token
                startAttempt(token: token, type: ctm.type, target: requester, uris: ctm.requester.uris, purpose: .forPeer)
            }
            if let attempt = linker.attempt(token: token), attempt.edge == nil {
                repliesAwaitingPunch[token, default: []].append(replyPacket)
            } else {
                route(replyPacket, previous: nil)
            }
        }
    }

    /// Connect-To-Me replies waiting for the attempt (by token) that links back to the requester to open its
    /// edge and punch on it (see `handleConnectToMe`).
    private var repliesAwaitingPunch: [UInt64: [RoutedPacket]] = [:]

    private func handleConnectToMeReply(_ reply: ConnectToMeReply, header: RoutedHeader) {
        if reply.requester != address {
            // We are the requester's gateway: pass the reply on over our leaf connection.
            guard table.contains(reply.requester) else { stats.drop("ctm_reply_no_requester"); return }
            var forwarded = header
            forwarded.destination = reply.requester
            route(RoutedPacket(header: forwarded, payload: reply.encoded()), previous: nil)
            return
        }
        let responder = reply.responder
        logger.trace("ctm reply", metadata: ["from": "\(responder.address.short)", "pending": "\(pendingConnects[reply.token] != nil)"])
        post(.neighboursLearned(reply.neighbours + [responder], from: responder.address))
        guard let pending = pendingConnects[reply.token], responder.address != address else { return }
        if let existing = table.connection(to: responder.address) {
            succeedConnect(reply.token, with: addLocalType(pending.request.type, to: existing, token: random.next()))
        } else if let attempt = linker.attempt(to: responder.address) {
            // The responder punched before replying: an attempt waiting for that goes ahead, on its current URIs.
            perform(linker.peerPunched(token: attempt.token, uris: responder.uris))
        } else {
            startAttempt(token: random.next(), type: pending.request.type, target: responder.address,
                         uris: responder.uris, purpose: .own(connectToken: reply.token), peerHasPunched: true)
        }
    }

    private func handleRoutingError(_ error: RoutingError) {
        if error.payloadType == .tunnel {
            tunnelListener?.tunnelFrameUndeliverable(to: error.destination, reporter: error.reporter, code: error.code)
        }
        if error.payloadType == .connectToMe {
            // A direct link attempt may still succeed where the CTM could not be routed.
            for (token, pending) in pendingConnects where pending.request.target == error.destination
                && !linker.attempts.values.contains(where: { $0.purpose == .own(connectToken: token) }) {
                failConnect(token, reason: "CTM to \(error.destination.short) not delivered: \(error.code)")
            }
        }
        onRoutingError?(error)
    }

    // MARK: - Linking

    private func startAttempt(token: UInt64, type: ConnectionType, target: Address?, uris: [TransportURI],
                              purpose: Linker.Purpose, peerHasPunched: Bool = false) {
        stats.linkAttempts += 1
        // A peer's URIs that once led back to this node (its loopback, say) would again.
        let uris = target == nil ? uris : uris.filter { !ownURIs.contains($0) }
        perform(linker.start(token: token, type: type, target: target, uris: uris, purpose: purpose,
                             peerHasPunched: peerHasPunched, at: scheduler.now))
    }

    func perform(_ actions: [Linker.Action]) {
        for action in actions {
            switch action {
            case .openEdge(let token, let uri):
                openEdge(to: uri) { node, result in
                    let canPunch = (try? result.get()).map { node.edges[$0]?.edge is any HolePunchingEdge } ?? false
                    node.perform(node.linker.edgeOpened(token: token, result: result, canPunch: canPunch, uri: uri))
                    for reply in node.repliesAwaitingPunch.removeValue(forKey: token) ?? [] { node.route(reply, previous: nil) }
                }
            case .punch(let token, let edge, let ttl):
                guard let record = edges[edge], let punching = record.edge as? any HolePunchingEdge else { continue }
                logger.debug("punch", metadata: ["to": "\(record.edge.remoteURI)", "ttl": "\(ttl)",
                                                 "target": "\(linker.attempt(token: token)?.target?.short ?? "?")"])
                punching.punch(ttl: ttl)
            case .sendRequest(let token, let edge, let uri):
                guard let attempt = linker.attempt(token: token) else { continue }
                let request = LinkRequest(token: token, type: attempt.type, requester: info, target: attempt.target,
                                          observedURI: uri)
                send(.linkRequest(request), on: edge)
                if attempt.type == .leaf {
                    for var packet in joinQueue {
                        packet.header.hops += 1
                        send(.routed(packet), on: edge)
                    }
                }
            case .armTimer(let token, var delay):
                // A request on a secure edge whose handshake is still running leaves only after it: the wait
                // for the reply starts a handshake later (a slow handshake must not fail the link, or the peer,
                // which does get the request, holds a connection we gave up on).
                if security != nil, let edge = linker.attempt(token: token)?.edge, edgeChannels[edge]?.isEstablished != true {
                    delay = delay * 2
                }
                attemptTimers[token]?.cancel()
                attemptTimers[token] = schedule(after: delay) { node in
                    node.attemptTimers[token] = nil
                    node.perform(node.linker.timerFired(token: token))
                }
            case .established(let attempt, let reply, let edge):
                attemptTimers.removeValue(forKey: attempt.token)?.cancel()
                reclaims.remove(attempt.token)
                observer?.linkEstablished(after: scheduler.now - attempt.startedAt,
                                          transport: edges[edge]?.edge.transport ?? "?")
                linkEstablished(attempt, reply: reply, edge: edge)
                withdrawHeldRequests(of: attempt)
            case .failed(let attempt, let reason):
                attemptTimers.removeValue(forKey: attempt.token)?.cancel()
                attemptFailed(attempt, reason: reason)
                withdrawHeldRequests(of: attempt)
            }
        }
    }

    /// An attempt that ended (completed on another edge, failed, or yielded to the peer's own request) may
    /// have left a link request waiting in an edge's secure channel for its handshake. Sent later, it would
    /// reach a peer that holds the connection on another edge already, and the peer would move the connection
    /// to this edge while we stay on ours. Such an edge carries nothing else: closing it withdraws the request.
    private func withdrawHeldRequests(of attempt: Linker.Attempt?) {
        guard let attempt, security != nil else { return }
        for edge in attempt.edgesTried.sorted() where (edgeChannels[edge]?.queuedCount ?? 0) > 0 {
            guard edges[edge] != nil, table.connection(on: edge) == nil, !linker.isUsing(edge) else { continue }
            logger.debug("withdrawing a link request held for a handshake",
                         metadata: ["edge": "\(edge)", "target": "\(attempt.target?.short ?? "?")"])
            closeEdgeIfUnused(edge)
            linker.withdraw(edge, fromYielded: attempt.token)
        }
    }

    private func openEdge(to uri: TransportURI, then: @escaping (Node, Result<EdgeID, EdgeError>) -> Void) {
        // An inbound edge's remote URI is where the peer's socket is, which need not accept anything new (a tcp
        // client's port): an attempt to it (a relink after `notLinked`) goes over that very edge.
        if let id = edges.first(where: { $0.value.edge.isInbound && !$0.value.edge.isClosed && $0.value.edge.remoteURI == uri })?.key {
            scheduler.schedule(after: .zero) { [weak self] in
                guard let self, self.isRunning else { return }
                then(self, self.edges[id] != nil ? .success(id) : .failure(.unreachable(uri, reason: "the edge closed")))
            }
            return
        }
        guard let listener = listeners.first(where: { $0.scheme == uri.scheme }) else {
            // Report asynchronously, like a transport would.
            scheduler.schedule(after: .zero) { [weak self] in
                guard let self, self.isRunning else { return }
                then(self, .failure(.unreachable(uri, reason: "this node runs no '\(uri.scheme)' transport")))
            }
            return
        }
        listener.createEdge(to: uri) { [weak self] result in
            guard let self, self.isRunning else { return }
            switch result {
            case .success(let edge): then(self, .success(self.register(edge)))
            case .failure(let error): then(self, .failure(error))
            }
        }
    }

    private func register(_ edge: any Edge) -> EdgeID {
        let key = ObjectIdentifier(edge)
        if let id = edgeIDs[key] { return id }
        nextEdgeNumber += 1
        let id = EdgeID(nextEdgeNumber)
        edgeIDs[key] = id
        edges[id] = EdgeRecord(edge: edge, openedAt: scheduler.now)
        edge.delegate = self
        return id
    }

    private func linkEstablished(_ attempt: Linker.Attempt, reply: LinkReply, edge: EdgeID) {
        if attempt.type == .leaf { joinQueue.removeAll() }
        guard let record = edges[edge] else { return }
        uriLinkOwners[attempt.token] = nil
        if reply.responder.address == address {
            ownURIs.insert(record.edge.remoteURI)
            cachedInfo = nil
            closeEdgeIfUnused(edge)
            return
        }
        // What a peer sees at the end of a tunnel is not where the world can reach us.
        if record.edge.transport != tunnelListener?.scheme { learnObserved(reply.observedURI, from: reply.responder.address) }
        let connectToken: UInt64?
        let localType: ConnectionType?
        switch attempt.purpose {
        case .own(let token): (localType, connectToken) = (attempt.type, token)
        case .forPeer: (localType, connectToken) = (nil, nil)
        }
        if attempt.type == .relink {
            // Only moves an existing connection to this edge; without one there is nothing to move.
            guard table.contains(reply.responder.address) else { return closeEdgeIfUnused(edge) }
            establish(peer: reply.responder, edge: edge, record: record, localType: nil, remoteType: nil, byPeer: false)
            logger.debug("connection moved to a new edge",
                         metadata: ["peer": "\(reply.responder.address.short)", "transport": "\(record.edge.transport)"])
            return
        }
        let connection = establish(peer: reply.responder, edge: edge, record: record,
                                   localType: localType, remoteType: localType == nil ? attempt.type : nil, byPeer: false)
        if let connectToken { succeedConnect(connectToken, with: connection) }
        post(.neighboursLearned(reply.neighbours, from: reply.responder.address))
    }

    private func attemptFailed(_ attempt: Linker.Attempt, reason: String) {
        stats.linkFailures += 1
        if reclaims.remove(attempt.token) != nil, let target = attempt.target, let connection = table.connection(to: target) {
            removeConnection(target, reason: "the peer no longer knows the connection")
            closeEdgeIfUnused(connection.edgeID)
        }
        if attempt.type == .leaf, !linker.attempts.values.contains(where: { $0.type == .leaf }) { joinQueue.removeAll() }
        logger.debug("link failed", metadata: ["target": "\(attempt.target?.short ?? "?")", "reason": "\(reason)"])
        if let (owner, uris) = uriLinkOwners.removeValue(forKey: attempt.token) {
            // Operators need to see this one: without a bootstrap the node cannot join.
            logger.warning("cannot link to any of these URIs", metadata: [
                "uris": "\(uris.map(\.text).joined(separator: ", "))", "reason": "\(reason)"])
            post(.linkFailed(uris, reason: reason), only: owner)
        }
        if case .own(let token?) = attempt.purpose, let target = attempt.target, !table.contains(target) {
            failConnect(token, reason: "link to \(target.short) failed: \(reason)")
        }
    }

    private func handleLinkRequest(_ request: LinkRequest, edgeID: EdgeID) {
        guard let record = edges[edgeID] else { return }
        func refuse(_ code: LinkError.Code, _ message: String) {
            send(.linkError(LinkError(token: request.token, code: code, message: message)), on: edgeID)
        }
        let peer = request.requester
        logger.trace("link request", metadata: ["from": "\(peer.address.short)", "type": "\(request.type)",
                                                "pending": "\(pendingConnects[request.token] != nil)"])
        if peer.address == address { return refuse(.selfLink, "you reached yourself") }
        if let refusal = entitlementRefusal(claimed: peer.address, on: edgeID) {
            logRefusal(refusal, on: edgeID)
            return refuse(.refused, refusal.description)
        }
        noteReached(at: request.observedURI)
        if let target = request.target, target != address {
            return refuse(.wrongTarget, "this is \(address.short), not \(target.short)")
        }
        let existing = table.connection(to: peer.address)
        if request.type == .relink {
            guard existing != nil else { return refuse(.refused, "no connection to move to this edge; link anew") }
            establish(peer: peer, edge: edgeID, record: record, localType: nil, remoteType: nil, byPeer: true)
            return replyToLink(request, edgeID: edgeID, record: record)
        }
        if existing == nil, let ours = linker.attempt(to: peer.address) {
            // Both ends are linking at once: the attempt started by the larger address wins. One that sent no
            // request yet (it waited for this very request after punching) yields: the peer never saw it.
            if address > peer.address && ours.hasSentRequest {
                refuse(.raceLost, "simultaneous link; the larger address's attempt wins")
                // Its request got through, so its NAT lets ours through too: ours need not wait any longer.
                return perform(linker.peerPunched(token: ours.token, uris: []))
            }
            let yielded = linker.yield(token: ours.token, to: edgeID)
            attemptTimers.removeValue(forKey: ours.token)?.cancel()
            defer { withdrawHeldRequests(of: yielded) }
            let onOurBehalf = pendingConnects[request.token]?.request.type ?? finishedConnects[request.token]
            var connection = establish(peer: peer, edge: edgeID, record: record, localType: onOurBehalf,
                                       remoteType: onOurBehalf == nil ? request.type : nil, byPeer: true)
            if case .own(let connectToken) = ours.purpose {
                connection = addLocalTypeSilently(ours.type, to: connection)
                if let connectToken { succeedConnect(connectToken, with: connection) }
            }
            if pendingConnects[request.token] != nil { succeedConnect(request.token, with: connection) }
            return replyToLink(request, edgeID: edgeID, record: record)
        }
        if existing == nil && table.count >= config.maximumConnections {
            return refuse(.tableFull, "already at \(config.maximumConnections) connections")
        }
        if let ourType = pendingConnects[request.token]?.request.type ?? finishedConnects[request.token] {
            // A CTM recipient linking back to us: the connection serves our request, not one of the peer's.
            let connection = establish(peer: peer, edge: edgeID, record: record, localType: ourType, remoteType: nil,
                                       byPeer: true)
            succeedConnect(request.token, with: connection)
        } else {
            establish(peer: peer, edge: edgeID, record: record, localType: nil, remoteType: request.type, byPeer: true)
        }
        replyToLink(request, edgeID: edgeID, record: record)
    }

    private func addLocalTypeSilently(_ type: ConnectionType, to connection: Connection) -> Connection {
        var updated = connection
        guard type != .relink, !updated.localTypes.contains(type) else { return updated }
        updated.localTypes.insert(type)
        table.upsert(updated)
        post(.connectionAdded(updated))
        return updated
    }

    private func replyToLink(_ request: LinkRequest, edgeID: EdgeID, record: EdgeRecord) {
        let reply = LinkReply(token: request.token, responder: info, observedURI: record.edge.remoteURI,
                              neighbours: table.nearestNeighbours(perSide: config.sharedNeighboursPerSide)
                                .filter { $0.address != request.requester.address }.map(\.peer))
        send(.linkReply(reply), on: edgeID)
    }

    /// Adds or updates the one connection to `peer`, now on `edge`.
    @discardableResult
    private func establish(peer: NodeInfo, edge: EdgeID, record: EdgeRecord, localType: ConnectionType?,
                           remoteType: ConnectionType?, byPeer: Bool) -> Connection {
        let now = scheduler.now
        var connection: Connection
        if var existing = table.connection(to: peer.address) {
            if existing.edgeID != edge {
                // The peer linked again on a new edge (it restarted or moved): the newest handshake wins.
                let old = existing.edgeID
                logger.debug("connection to a new edge", metadata: ["peer": "\(peer.address.short)", "from": "\(old)",
                                                                  "to": "\(edge)", "by_peer": "\(byPeer)"])
                existing.edgeID = edge
                existing.transport = record.edge.transport
                existing.localURI = record.edge.localURI
                existing.remoteURI = record.edge.remoteURI
                existing.isInbound = byPeer
                table.upsert(existing)
                // By the peer's request: the peer moves to this edge when our reply reaches it, even if the attempt
                // that sent the request yielded to one of ours meanwhile (`Linker.replyReceived`), and sends on
                // the old edge until then. By the peer's reply: it moved before it replied, but what it sent
                // before may still be on the way. Closing the old edge now would lose those packets (and tell
                // the peer that its connection's edge closed).
                release(old, from: peer.address)
            }
            existing.peer = peer
            existing.lastHeard = now
            connection = existing
        } else {
            connection = Connection(peer: peer, localTypes: [], remoteTypes: [], edgeID: edge,
                                    transport: record.edge.transport, localURI: record.edge.localURI,
                                    remoteURI: record.edge.remoteURI, isInbound: byPeer, createdAt: now)
        }
        edges[edge]?.formerPeer = nil
        let before = connection.types
        if let localType { connection.localTypes.insert(localType) }
        if let remoteType { connection.remoteTypes.insert(remoteType) }
        let isNew = !table.contains(peer.address)
        let wasInRing = table.hasStructured
        table.upsert(connection)
        if !wasInRing && table.hasStructured {
            logger.info("joined the ring", metadata: ["via": "\(peer.address.short)", "transport": "\(connection.transport)"])
        }
        if isNew || connection.types != before {
            post(.connectionAdded(connection))
            tableChanged()
        }
        return connection
    }

    /// A peer saw or reached us at `uri`: where we are bound (not at a NAT mapping learned earlier) means no
    /// NAT in between.
    private func noteReached(at uri: TransportURI) {
        // A URI a peer reported before is one of our NAT's mappings, which listeners list too.
        guard !isReachableDirectly, uri.scheme != tunnelListener?.scheme, !everObserved.contains(uri),
              listeners.contains(where: { $0.scheme == uri.scheme && $0.localURIs.contains(uri) })
        else { return }
        isReachableDirectly = true
        cachedInfo = nil
    }

    private func learnObserved(_ uri: TransportURI, from reporter: Address) {
        if observedReporters[uri, default: []].count < 2 { observedReporters[uri, default: []].insert(reporter) }
        if observedReporters.count > 64 {
            // Behind a symmetric NAT every peer adds one; keep those still listed.
            observedReporters = observedReporters.filter { observedOrder.contains($0.key) || $0.key == uri }
        }
        noteReached(at: uri)
        everObserved.insert(uri)
        guard observedOrder.first != uri else { return }
        // A new port at an address we were already seen at means our NAT rebound: the old URI is stale.
        let host = uri.hostAndPort?.host
        // Only a mapping that two peers saw is endpoint-independent; behind a symmetric NAT every peer sees
        // another port, which is no rebinding.
        let rebound = host != nil && observedOrder.contains {
            $0 != uri && $0.scheme == uri.scheme && $0.hostAndPort?.host == host && (observedReporters[$0]?.count ?? 0) >= 2
        }
        observedOrder.removeAll { $0 == uri || ($0.scheme == uri.scheme && host != nil && $0.hostAndPort?.host == host) }
        observedOrder.insert(uri, at: 0)
        observedURIs = Set(observedOrder)
        listeners.first { $0.scheme == uri.scheme }?.learnObservedURI(uri)
        cachedInfo = nil
        if rebound { reclaimAfterRebinding(scheme: uri.scheme) }
    }

    /// Our NAT gave us a new mapping: peers still send to the old one, which is filtered now. For every
    /// connection over that transport not heard from since, ask the peer (a Connect-To-Me of type `relink`,
    /// routed through the ring) to link to our new URIs while we link to its: both ends at once, so NATs on
    /// both sides open, and the connection moves to the new edge without losing its types.
    private func reclaimAfterRebinding(scheme: String) {
        let now = scheduler.now
        // The CTMs go out through a peer that just heard us at the new mapping: the others filter us now.
        guard let through = table.connections.filter({ now - $0.lastHeard <= .seconds(1) })
            .max(by: { $0.lastHeard < $1.lastHeard }) else { return }
        logger.debug("our NAT mapping changed; asking peers to link to the new one", metadata: ["through": "\(through.address.short)"])
        for connection in table.connections where connection.transport == scheme
            && now - connection.lastHeard > .seconds(1) && linker.attempt(to: connection.address) == nil {
            relinkBothWays(connection.address, uris: connection.peer.uris, through: through.edgeID)
        }
    }

    /// Moves a connection to a new edge from both ends at once: a Connect-To-Me of type `relink` asks the peer
    /// to link to our URIs while we link to `uris` with a `relink` attempt that is part of it, so both ends
    /// punch before they send (see `Linker`). The CTM is routed, or sent on `through` (a first hop known to
    /// reach the ring when routing would pick a stale connection).
    private func relinkBothWays(_ peer: Address, uris: [TransportURI], through: EdgeID? = nil) {
        let ctm = ConnectToMe(token: random.next(), type: .relink, requester: info, gateway: nil)
        var packet = RoutedPacket(header: RoutedHeader(mode: .exact, payloadType: .connectToMe, source: address,
                                                       destination: peer), payload: ctm.encoded())
        if let through {
            packet.header.hops = 1
            send(.routed(packet), on: through)
        } else {
            route(packet, previous: nil)
        }
        startAttempt(token: random.next(), type: .relink, target: peer, uris: uris, purpose: .own(connectToken: ctm.token))
    }

    /// URIs peers reported seeing this node at, newest first (one per scheme and address).
    private var observedOrder: [TransportURI] = []
    public private(set) var observedURIs: Set<TransportURI> = []

    // MARK: - Connections going away

    func removeConnection(_ peer: Address, reason: String) {
        guard let removed = table.remove(peer) else { return }
        relinkTries[peer] = nil
        logger.debug("connection removed", metadata: ["peer": "\(peer.short)", "reason": "\(reason)"])
        post(.connectionRemoved(removed))
        tableChanged()
    }

    /// The connection to `peer` moved from edge `id` to another, or was trimmed there, while the
    /// peer may still send there for a moment: what it sends is taken as its connection's, and the liveness
    /// sweep closes the edge once it has been unused for a while (docs/protocol.md, "Both ends agree on the
    /// edge").
    private func release(_ id: EdgeID, from peer: Address) {
        guard edges[id] != nil, table.connection(on: id) == nil else { return }
        edges[id]?.formerPeer = peer
        edges[id]?.releasedAt = scheduler.now
    }

    func closeEdgeIfUnused(_ id: EdgeID) {
        guard let record = edges[id] else { return }
        if table.connections.contains(where: { $0.edgeID == id }) || linker.isUsing(id) { return }
        forget(id)
        record.edge.close()
    }

    func forget(_ id: EdgeID) {
        edgeChannels[id] = nil
        guard let record = edges.removeValue(forKey: id) else { return }
        edgeIDs[ObjectIdentifier(record.edge)] = nil
        record.edge.delegate = nil
    }

    // MARK: - Liveness

    private func checkLiveness() {
        let now = scheduler.now
        for connection in table.connections {
            let silent = now - connection.lastHeard
            if silent >= config.liveness.deadAfter {
                logger.debug("peer silent; closing", metadata: ["peer": "\(connection.address.short)"])
                removeConnection(connection.address, reason: "dead")
                closeEdgeIfUnused(connection.edgeID)
            } else if silent >= config.liveness.pingInterval {
                send(.ping(nonce: UInt64(bitPattern: now.nanoseconds)), on: connection.edgeID)
            }
            if isTunnelled(connection) { tryDirectEdge(for: connection, now: now) }
        }
        // Edges that never became connections (refused, stray packets) are closed after a while.
        let stale = config.linking.replyTimeout * (config.linking.attemptsPerURI + 2)
        for (id, record) in edges where now - (record.releasedAt ?? record.openedAt) > stale {
            closeEdgeIfUnused(id)
        }
    }

    // MARK: - Tunnelled connections

    private func isTunnelled(_ connection: Connection) -> Bool {
        tunnelListener?.scheme == connection.transport
    }

    /// The connections tunnel frames may cross: every one but the tunnelled ones.
    private var directTable: ConnectionTable {
        guard let tunnelScheme = tunnelListener?.scheme else { return table }
        if let cached = directTableCache, cached.revision == table.revision { return cached.table }
        var direct = ConnectionTable(localAddress: address)
        for connection in table.connections where connection.transport != tunnelScheme { direct.upsert(connection) }
        directTableCache = (table.revision, direct)
        return direct
    }

    /// A relayed connection keeps trying the peer's direct URIs now and then, and moves to a direct edge as
    /// soon as one answers (a `relink` request: the connection and its types stay, the edge changes).
    private func tryDirectEdge(for connection: Connection, now: Timestamp) {
        let peer = connection.address
        // The first retry comes soon: a relay often wins a race that a direct edge would have won a bit later.
        // Then the interval doubles with every failed try, up to 8 times `direct_retry_s`.
        let interval = config.linking.directRetryInterval
        let tries = relinkTries[peer]
        let wait = tries.map { interval * (1 << min($0.count - 1, 3)) } ?? min(.seconds(5), interval)
        guard now - (tries?.at ?? connection.createdAt) >= wait, linker.attempt(to: peer) == nil else { return }
        relinkTries[peer] = (now, (tries?.count ?? 0) + 1)
        let schemes = Set(listeners.map(\.scheme)).subtracting([connection.transport])
        let uris = connection.peer.uris.filter { schemes.contains($0.scheme) }
        guard !uris.isEmpty else { return }
        // The CTM is routed over the relay itself.
        relinkBothWays(peer, uris: uris)
    }

    /// What to do with a `tunnel` packet here, over direct connections only: straight to the destination if it
    /// is a direct peer; else towards the named forwarder (`via`); and when there is none, or it cannot be
    /// reached or lost the destination, towards the destination itself, with `via` cleared so that later
    /// nodes do the same. Each phase is greedy (the sender's own first step excepted, as its ring neighbours
    /// may all be relayed), and the phase changes at most once, so a tunnel packet cannot loop.
    private func tunnelDecision(_ header: RoutedHeader, via: Address, previous: Address?)
        -> (decision: Router.Decision, clearVia: Bool) {
        if header.destination == address { return (.deliver, false) }
        let direct = directTable
        if direct.contains(header.destination) { return (.forward(to: header.destination), false) }
        if via != .zero && via != address {
            if direct.contains(via) { return (.forward(to: via), false) }
            var toward = header
            toward.destination = via
            let decision = Router.decide(toward, at: address, table: direct, previous: previous, isRingMember: isRingMember)
            if case .forward = decision { return (decision, false) }
            if previous == nil, let start = direct.nearestStructured(to: via) { return (.forward(to: start.address), false) }
        }
        let decision = Router.decide(header, at: address, table: direct, previous: previous, isRingMember: isRingMember)
        if case .forward = decision { return (decision, via != .zero) }
        if previous == nil, let start = direct.nearestStructured(to: header.destination) ?? direct.connections.first {
            return (.forward(to: start.address), via != .zero)
        }
        if case .deliver = decision { return (.fail(.noRoute), false) }
        return (decision, false)
    }

    /// While the node has relayed connections it keeps `minimumForwarders` direct ones (type `forwarder`, which
    /// overlords do not trim and the peer sees it wants), or every tunnel would lose its first hop when the
    /// overlords trim direct connections they no longer need. Without relayed connections it lets them go.
    private func keepForwarders() {
        guard tunnelListener != nil else { return }
        let direct = directTable.connections
        let kept = direct.filter { $0.localTypes.contains(.forwarder) }
        if direct.count == table.count {
            for connection in kept { trim(connection.address, type: .forwarder) }
            return
        }
        guard kept.count < Node.minimumForwarders else { return }
        // Structured ones first (they stay longer), nearest first.
        let candidates = directTable.nearestNeighbours(perSide: Node.minimumForwarders).map(\.address)
            + direct.filter { !$0.localTypes.contains(.forwarder) }.map(\.address)
        var added = kept.count
        var seen = Set(kept.map(\.address))
        for peer in candidates where added < Node.minimumForwarders && seen.insert(peer).inserted {
            guard let connection = table.connection(to: peer) else { continue }
            _ = addLocalType(.forwarder, to: connection, token: random.next())
            added += 1
        }
    }

    /// How many direct connections a node with relayed ones keeps for them.
    public static let minimumForwarders = 2

    // MARK: - Status (neighbour sharing)

    private func tableChanged() {
        // A tunnelling transport's URIs name this node's direct peers.
        if tunnelListener != nil { cachedInfo = nil }
        onTableChange?(self)
        guard !statusScheduled else { return }
        statusScheduled = true
        // Coalesce a burst of changes into one round of status messages.
        timers["status"] = schedule(after: .milliseconds(50)) { node in
            node.statusScheduled = false
            node.keepForwarders()
            node.shareNeighboursIfChanged()
        }
    }

    private func shareNeighboursIfChanged() {
        let nearest = table.nearestNeighbours(perSide: config.sharedNeighboursPerSide)
        let addresses = nearest.map(\.address)
        guard addresses != lastSharedNeighbours else { return }
        lastSharedNeighbours = addresses
        let status = EdgeMessage.status(Status(neighbours: nearest.map(\.peer)))
        for connection in nearest { send(status, on: connection.edgeID) }
    }

    // MARK: - Routing

    func route(_ packet: RoutedPacket, previous: Address?) {
        var packet = packet
        if let previous { stampGateway(&packet, from: previous) }
        let isTunnel = packet.header.payloadType == .tunnel
        let decision: Router.Decision
        if isTunnel {
            guard let via = TunnelFrame.via(in: packet.payload) else { stats.drop("truncated_tunnel"); return }
            let clearVia: Bool
            (decision, clearVia) = tunnelDecision(packet.header, via: via, previous: previous)
            if clearVia, var tunnel = try? TunnelFrame.decode(packet.payload) {
                tunnel.via = .zero
                packet.payload = tunnel.encoded()
            }
        } else {
            decision = Router.decide(packet.header, at: address, table: table, previous: previous,
                                     isRingMember: isRingMember)
        }
        logger.trace("route", metadata: ["type": "\(packet.header.payloadType)", "mode": "\(packet.header.mode)",
                                         "dst": "\(packet.header.destination.short)", "decision": "\(decision)"])
        switch decision {
        case .deliver:
            deliver(packet, previous: previous)
        case .forward(let next):
            guard packet.header.hops < packet.header.ttl else {
                stats.drop("ttl_expired")
                return routingFailed(packet.header, .ttlExpired)
            }
            guard let connection = (isTunnel ? directTable : table).connection(to: next) else { return }
            packet.header.hops += 1
            if previous != nil {
                stats.routedForwarded += 1
                onForward?(packet)
            }
            send(.routed(packet), on: connection.edgeID)
        case .fail(let code):
            if previous == nil, table.isEmpty, linker.attempts.values.contains(where: { $0.type == .leaf }) {
                // Joining: the leaf link is on its way. Send this right behind its link request on the same
                // edge, so the gateway routes it as soon as it accepts us (saves a round trip per join).
                joinQueue.append(packet)
                return
            }
            stats.drop("route_\(code)_\(packet.header.payloadType)")
            routingFailed(packet.header, code)
        }
    }

    /// A gateway stamps itself into CTMs from a joining leaf, which did not know it yet, so replies come back;
    /// and it adds the URI it sees the leaf at (its NAT mapping, which the leaf cannot know yet), first, so
    /// the CTM's recipients link to where the leaf can actually be reached.
    private func stampGateway(_ packet: inout RoutedPacket, from previous: Address) {
        // A joining leaf: its link to us is not structured yet, or it has not learned the public address we
        // see it at yet (answering its first CTM may have made the link structured before we forward the next).
        guard packet.header.payloadType == .connectToMe, packet.header.source == previous,
              let link = table.connection(to: previous),
              var ctm = try? ConnectToMe.decode(packet.payload), ctm.gateway == nil else { return }
        let seenAt = link.remoteURI.hostAndPort?.host
        guard !link.isStructured || !ctm.requester.uris.contains(where: { $0.hostAndPort?.host == seenAt }) else { return }
        ctm.gateway = address
        if !ctm.requester.uris.contains(link.remoteURI) {
            ctm.requester = NodeInfo(address: ctm.requester.address, uris: [link.remoteURI] + ctm.requester.uris)
        }
        packet.payload = ctm.encoded()
    }

    private func routingFailed(_ header: RoutedHeader, _ code: RoutingError.Code) {
        guard header.payloadType != .routingError else { return }
        let error = RoutingError(code: code, destination: header.destination, payloadType: header.payloadType, reporter: address)
        if header.source == address { return handleRoutingError(error) }
        let back = RoutedHeader(mode: .exact, payloadType: .routingError, source: address, destination: header.source)
        route(RoutedPacket(header: back, payload: error.encoded()), previous: nil)
    }

    private func deliver(_ packet: RoutedPacket, previous: Address?) {
        stats.routedDelivered += 1
        let header = packet.header
        do {
            switch header.payloadType {
            case .data:
                // Exact-mode data from a node we are not connected to travels end to end sealed (`.secure`);
                // in plaintext, its source is only a claim of the last hop.
                if security != nil, header.mode == .exact, previous != nil, previous != header.source {
                    return stats.drop("unauthenticated_data")
                }
                observer?.delivered(hops: header.hops)
                if header.mode == .exact { noteTraffic(with: header.source, bytes: packet.payload.readableBytes, isSent: false) }
                onDeliver?(header, packet.payload)
            case .secure:
                guard security != nil else { return stats.drop("secure_payload_without_security") }
                receiveEndToEnd(packet.payload, header: header)
            case .connectToMe: handleConnectToMe(try ConnectToMe.decode(packet.payload), header: header)
            case .connectToMeReply: handleConnectToMeReply(try ConnectToMeReply.decode(packet.payload), header: header)
            case .routingError: handleRoutingError(try RoutingError.decode(packet.payload))
            case .tunnel:
                guard let tunnelListener else { return stats.drop("no_tunnel_transport") }
                let tunnel = try TunnelFrame.decode(packet.payload)
                tunnelListener.receiveTunnelFrame(tunnel.frame, from: header.source, returnVia: tunnel.returnVia)
            default: stats.drop("unknown_payload_type")
            }
        } catch {
            stats.drop(error.reason)
        }
    }

    // MARK: - Sending

    /// Sends `message` on an edge: sealed by the edge's secure session when the node is secured, in the buffer
    /// it is encoded into (one allocation per message).
    func send(_ message: EdgeMessage, on id: EdgeID) {
        guard edges[id] != nil else { return }
        guard security != nil else { return transmit(message.encoded(), on: id) }
        sendSecured(message.encoded(headroom: SecureChannel.sealingHeadroom, tailroom: SecureChannel.sealingTailroom),
                    on: id)
    }

    /// Hands bytes to the edge as they are.
    func transmit(_ buffer: ByteBuffer, on id: EdgeID) {
        guard let record = edges[id] else { return }
        stats.packetsOut += 1
        stats.bytesOut += buffer.readableBytes
        record.edge.send(buffer)
    }
}

// MARK: - Transport callbacks

extension Node: EdgeListenerDelegate, EdgeDelegate {
    public func edgeListener(_ listener: any EdgeListener, didAccept edge: any Edge) {
        guard isRunning else { edge.close(); return }
        _ = register(edge)
    }

    public func edge(_ edge: any Edge, didReceive packet: ByteBuffer) {
        guard isRunning, let id = edgeIDs[ObjectIdentifier(edge)] else { return }
        stats.packetsIn += 1
        stats.bytesIn += packet.readableBytes
        if SecureFrame.isSecureFrame(packet) { return receiveSecureFrame(packet, on: id) }
        if security != nil { return refusePlaintext(packet, on: id) }
        handleEdgeMessage(packet, on: id)
    }

    /// One edge message, decrypted if the node is secured.
    func handleEdgeMessage(_ packet: ByteBuffer, on id: EdgeID) {
        guard let edge = edges[id]?.edge else { return }
        let message: EdgeMessage
        do {
            message = try EdgeMessage.decode(packet)
        } catch {
            stats.drop(error.reason)
            return
        }
        // The connection (if any) on this edge.
        let linked = table.connection(on: id)?.address
        // Or a peer connected on another edge that sends here all the same: the two ends briefly disagree on
        // which edge carries the connection (it just moved: crossing link requests). Its traffic is taken as
        // the connection's, so no packet is lost to the disagreement.
        let stray = linked == nil ? strayPeer(on: id) : nil
        let peer = linked ?? stray
        if let peer { table.update(peer) { $0.lastHeard = scheduler.now } }
        if let stray, edges[id]?.formerPeer != stray, message.isConnectionTraffic {
            // Not an edge the connection just left (the peer follows our reply there): tell the peer to link
            // again here, which moves our end of the connection to the edge it uses.
            notLinked(id, dropped: false)
        }
        switch message {
        case .linkRequest(let request): handleLinkRequest(request, edgeID: id)
        case .linkReply(let reply):
            if reply.responder.address != address, let refusal = entitlementRefusal(claimed: reply.responder.address, on: id) {
                logRefusal(refusal, on: id)
                return
            }
            let actions = linker.replyReceived(reply, on: id)
            if actions.isEmpty { settleEdge(after: reply, on: id) }
            perform(actions)
        case .linkError(let error):
            if error.code == .selfLink, let attempt = linker.attempt(token: error.token), attempt.edge == id {
                ownURIs.insert(edge.remoteURI)
                cachedInfo = nil
            }
            perform(linker.errorReceived(error, on: id))
        case .ping(let nonce):
            guard peer != nil else { return notLinked(id) }
            send(.pong(nonce: nonce), on: id)
        case .pong(let nonce):
            guard let peer else { return notLinked(id) }
            let sent = Timestamp(nanoseconds: Int64(bitPattern: nonce))
            if sent <= scheduler.now { table.update(peer) { $0.roundTrip = scheduler.now - sent } }
        case .close(let close):
            // Acted on on the connection's edge, or on the edge it just left when the peer has not followed yet
            // (it closes the connection it still holds there); a `notLinked` there is about the edge we left.
            let leaving = stray != nil && edges[id]?.formerPeer == stray && close.reason != .notLinked
            guard let peer = linked ?? (leaving ? stray : nil) else { return }
            if close.reason == .notLinked, linker.attempt(to: peer) == nil {
                // The peer answers from where it always was but no longer knows this edge as ours: our NAT
                // mapping changed (or the peer restarted). Offer it the connection again on this edge; if it
                // still holds it, the connection just moves here.
                let token = random.next()
                reclaims.insert(token)
                startAttempt(token: token, type: .relink, target: peer, uris: [edge.remoteURI], purpose: .own(connectToken: nil))
                return
            }
            let connectionEdge = table.connection(to: peer)?.edgeID
            removeConnection(peer, reason: "closed by peer")
            closeEdgeIfUnused(id)
            if let connectionEdge { closeEdgeIfUnused(connectionEdge) }
        case .status(let status):
            guard let peer else { return notLinked(id) }
            post(.neighboursLearned(status.neighbours, from: peer))
        case .routed(let packet):
            guard let peer else { return notLinked(id) }
            route(packet, previous: peer)
        }
    }

    /// The peer that connection traffic on edge `id` (which carries no connection) is taken from: one connected
    /// to us on another edge (on a secured node, the one whose certificate this edge's session holds), or the
    /// one whose connection just moved from or was trimmed on this edge (`EdgeRecord.formerPeer`; it sends until
    /// it follows or hears our close). Nil for anyone else: a member we hold no connection with gets nothing
    /// routed, since link refusals (an address it is not entitled to) must keep it out.
    func strayPeer(on id: EdgeID) -> Address? {
        let sender: Address?
        if security != nil {
            guard let channel = edgeChannels[id], channel.isEstablished else { return nil }
            sender = channel.peer?.entitledAddress
        } else {
            sender = edges[id]?.formerPeer
        }
        guard let sender, table.contains(sender) || sender == edges[id]?.formerPeer else { return nil }
        return sender
    }

    /// Connection traffic on an edge that carries no connection: drop it (unless `dropped` is false), and tell
    /// the sender (at most once a second per edge) so that a peer whose address changed stops using its stale
    /// connection and links again.
    private func notLinked(_ id: EdgeID, dropped: Bool = true) {
        if dropped { stats.drop("not_linked") }
        guard let record = edges[id] else { return }
        let now = scheduler.now
        if let last = record.notLinkedSentAt, now - last < .seconds(1) { return }
        edges[id]?.notLinkedSentAt = now
        send(.close(Close(reason: .notLinked, message: "no connection on this edge; link again")), on: id)
    }

    /// A reply this node does not act on (its attempt completed on another edge or ended) still means that the
    /// responder moved its end of our connection to edge `id` before it replied ("newest handshake wins"), so
    /// the two ends disagree. The larger address settles it: it asks the responder back with a `relink` on its
    /// own connection's edge (the reply to that arrives there and needs nothing more); the smaller follows the
    /// responder to `id`. Only one end of a pair ever asks back, so the two cannot swap edges forever.
    private func settleEdge(after reply: LinkReply, on id: EdgeID) {
        let peer = reply.responder.address
        guard peer != address, let connection = table.connection(to: peer), connection.edgeID != id,
              let record = edges[id], !record.edge.isClosed,
              let current = edges[connection.edgeID], !current.edge.isClosed else { return }
        if address > peer {
            logger.debug("the peer answered a finished attempt on another edge; asking it back",
                         metadata: ["peer": "\(peer.short)", "edge": "\(connection.edgeID)", "reply_edge": "\(id)"])
            send(.linkRequest(LinkRequest(token: random.next(), type: .relink, requester: info, target: peer,
                                          observedURI: current.edge.remoteURI)), on: connection.edgeID)
        } else {
            logger.debug("the peer answered a finished attempt on another edge; following it",
                         metadata: ["peer": "\(peer.short)", "from": "\(connection.edgeID)", "to": "\(id)"])
            establish(peer: reply.responder, edge: id, record: record, localType: nil, remoteType: nil, byPeer: false)
        }
    }

    public func edgeDidClose(_ edge: any Edge) {
        guard let id = edgeIDs[ObjectIdentifier(edge)] else { return }
        forget(id)
        if let peer = table.connection(on: id)?.address {
            removeConnection(peer, reason: "edge closed")
        }
        perform(linker.edgeClosed(id))
    }
}

// MARK: - Tunnel host (the relay transport's hook)

extension Node: OverlayTunnelHost {
    public var localAddress: Address { address }

    public var directPeers: [Address] {
        let direct = directTable
        let nearest = direct.nearestNeighbours(perSide: config.sharedNeighboursPerSide).map(\.address)
        let others = direct.connections.filter { $0.isStructured && !nearest.contains($0.address) }.map(\.address)
        let leaves = direct.connections.filter { !$0.isStructured }.map(\.address)
        return nearest + others + leaves
    }

    public func isDirectPeer(_ peer: Address) -> Bool { directTable.contains(peer) }

    public func connectForwarder(_ forwarder: Address) {
        guard isRunning, forwarder != address, !table.contains(forwarder), linker.attempt(to: forwarder) == nil,
              !pendingConnects.values.contains(where: { $0.request.target == forwarder }) else { return }
        // Owned by no overlord: the outcome is for the core alone (`keepForwarders` trims the type later).
        connect(ConnectRequest(target: forwarder, mode: .exact, type: .forwarder), owner: Node.coreOwner)
    }

    /// The owner of connects the core makes itself: no overlord hears of them.
    static let coreOwner = -1

    public func advertisedURIs(of peer: Address) -> [TransportURI] {
        table.connection(to: peer)?.peer.uris ?? linker.attempt(to: peer)?.uris ?? []
    }

    public func sendTunnelFrame(_ frame: ByteBuffer, to destination: Address, via: Address?) -> Bool {
        guard isRunning, destination != address else { return false }
        let limit = WireFormat.maximumPacketSize - EdgeMessage.routedOverhead - TunnelFrame.overhead
        guard frame.readableBytes <= limit else {
            stats.drop("tunnel_frame_too_large")
            return false
        }
        let header = RoutedHeader(mode: .exact, payloadType: .tunnel, source: address, destination: destination)
        let (decision, clearVia) = tunnelDecision(header, via: via ?? .zero, previous: nil)
        guard case .forward(let firstHop) = decision, let connection = directTable.connection(to: firstHop) else {
            stats.drop("tunnel_no_route")
            return false
        }
        // The first hop is a direct peer of ours: the far end sends back through it.
        let payload = TunnelFrame(via: clearVia ? .zero : via ?? .zero, returnVia: firstHop, frame: frame).encoded()
        var packet = RoutedPacket(header: header, payload: payload)
        packet.header.hops = 1
        send(.routed(packet), on: connection.edgeID)
        return true
    }
}
