import Logging
import NIOCore
import NIOPosix
import WOWKit

/// The `udp` transport's listener: ONE UDP socket (a NIO `DatagramChannel` on the node's event loop) for all
/// of a node's UDP edges, demultiplexed by the remote socket address.
///
/// Contract (the `EdgeListener` one, on real sockets):
/// - Every call and callback happens on `eventLoop`, the node's. `start` may also be called from another
///   thread, which then waits while the loop binds; everything else must be called on the loop.
/// - `start` binds the socket at once, or throws `UDPTransportError.bindFailed` naming the address and the
///   operating system's reason (e.g. the port is in use). `boundAddress` / `port` tell where it is bound
///   (useful with port 0).
/// - A datagram from a remote with no edge makes an inbound edge if the delegate admits its packet
///   (`edgeListener(_:admit:from:)`; else nothing is kept, and an answer the delegate gives goes back as
///   it is): the delegate's `didAccept` first, then the packet to the edge's delegate. Fragments from such a
///   remote are put back together only if the delegate admits unauthenticated strangers (not
///   `admitsOnlyAuthenticatedStrangers`). `createEdge` needs no handshake: it returns the existing edge for that
///   remote if there is one when its completion runs, else a new outbound edge; the completion is scheduled on
///   the loop, never called from inside `createEdge`.
/// - Sending: `send` queues the packet and one flush per event-loop tick sends everything queued (`sendmmsg`
///   where available). Every datagram is a data datagram (`FECPacket`: a 9-byte header, then the body),
///   written straight into a buffer of `UDPSendBatch`'s ring. A packet of at most 1,443 bytes is the body of
///   one; a larger one (up to 65,535) goes as fragments (`UDPFragmenter`), each the body of one, so that no
///   datagram is over `UDPTransport.maximumDatagramSize` (1,452). Where the kernel has UDP GSO, consecutive
///   datagrams of one size to one remote (the segments of a TCP super-segment, the fragments of a packet,
///   their parity) leave in one GSO write. While the remote reports loss, each parity group of the edge's
///   `FECEncoder` is followed by its parity; the flush closes open groups. Order is kept. Nothing throws.
///   Dropped and counted: packets
///   over 65,535 bytes (`oversized`), sends on closed edges (`edge_closed`), sends while the socket is down
///   (`socket_down`), sends while more than `maximumQueuedBytes` wait for the socket (`backpressure`).
/// - Receiving: with UDP GRO (where the kernel has it) one read may hold several datagrams of one size
///   back to back; they are split and each handled alone. Fragments are put back together per remote
///   (`UDPFragmentReassembler`: bounded, 1 s timeout, every drop counted under a `fragment_*` reason); only a
///   complete packet reaches an edge or makes one.
/// - Hole punching (`UDPEdge.punch(ttl:)`): what is queued is flushed first; then the socket's IP TTL (IPv6
///   hop limit for IPv6 peers) is set to the punch TTL, two punch packets (`PunchPacket`) are written and
///   flushed, and the TTL is set back once they left the socket: at once, unless the socket is backed up (then
///   packets queued meanwhile leave with the small TTL too and are lost, as UDP may lose them). NIO has no
///   per-datagram TTL. Punch packets that arrive are counted (`punchPacketsReceived`) and dropped before any
///   edge is made: they never reach the delegate.
/// - An error that makes NIO close the socket (e.g. a `sendmsg` failure such as "network unreachable")
///   does not end the listener: it is counted (`socketFailures`), logged, and the same address is bound
///   again; edges live on.
/// - `stop` closes every edge (each reports `edgeDidClose`, scheduled), sends what is queued, closes the
///   socket and accepts nothing more.
///
/// The listener holds its delegate strongly until `stop`. Call `stop` before dropping it. Its edges are a
/// `DatagramEdgeTable`; receiving and sending are in `UDPEdgeListener+Receiving` and `+Sending`.
public final class UDPEdgeListener: EdgeListener {
    /// Why the listener dropped a packet.
    public enum DropReason: String, CaseIterable, DropCounterReason {
        /// Over `UDPTransport.maximumPacketSize` bytes.
        case oversized
        /// Sent on an edge that was already closed.
        case edgeClosed = "edge_closed"
        /// Sent while the socket was not bound (before start, after stop, or while being bound again after
        /// a socket error).
        case socketDown = "socket_down"
        /// Sent while `maximumQueuedBytes` already waited for the socket.
        case backpressure
        /// A fragment shorter than its 8-byte header.
        case fragmentTruncated = "fragment_truncated"
        /// A fragment with no packet bytes.
        case fragmentEmpty = "fragment_empty"
        /// A fragment datagram over `UDPTransport.maximumDatagramSize` bytes.
        case fragmentOversized = "fragment_oversized"
        /// A fragment count of 0 or over 46, or not the count of the message's earlier fragments.
        case fragmentBadCount = "fragment_bad_count"
        /// A fragment index not below the count.
        case fragmentBadIndex = "fragment_bad_index"
        /// A fragment whose length does not fit its message's others, or makes it over 65,535 bytes.
        case fragmentBadLength = "fragment_bad_length"
        /// A fragment of a message in progress that already has that index.
        case fragmentDuplicate = "fragment_duplicate"
        /// A message (not a fragment) not complete within the timeout (1 s): a fragment was lost.
        case fragmentTimeout = "fragment_timeout"
        /// A message (not a fragment) discarded for a newer one of the same remote over the per-remote limit.
        case fragmentEvicted = "fragment_evicted"
        /// The first fragment of a message that did not fit the listener's reassembly budget.
        case fragmentNoRoom = "fragment_no_room"
        /// A data or parity datagram shorter than its header, or a loss report not exactly 10 bytes long.
        case fecTruncated = "fec_truncated"
        /// A packet or fragment from a remote without an edge that the delegate did not admit (nothing kept).
        case notAdmitted = "not_admitted"

        public var slot: Int? {
            switch self {
            case .oversized: return 0
            case .edgeClosed: return 1
            case .socketDown: return 2
            case .backpressure: return 3
            case .fragmentTruncated: return 4
            case .fragmentEmpty: return 5
            case .fragmentOversized: return 6
            case .fragmentBadCount: return 7
            case .fragmentBadIndex: return 8
            case .fragmentBadLength: return 9
            case .fragmentDuplicate: return 10
            case .fragmentTimeout: return 11
            case .fragmentEvicted: return 12
            case .fragmentNoRoom: return 13
            case .fecTruncated: return 14
            case .notAdmitted: return 15
            }
        }
    }

    /// At most this many learned public URIs are kept.
    public static let maximumObservedURIs = 4
    /// Bytes queued for the socket beyond which sends are dropped (`backpressure`), and below half of which
    /// they are taken again (NIO's write-buffer water marks).
    public static let maximumQueuedBytes = 4 << 20
    /// The receive buffer per read: room for the largest UDP datagram, and for the largest read UDP GRO
    /// coalesces (64 KiB), so none is truncated.
    static let receiveBufferSize = 65_536
    /// Reads per system call on the members' socket (`recvmmsg`), each in `receiveBufferSize` bytes, and calls
    /// per turn of the loop (16 reads a turn in all): where GRO coalesces nothing (a device without it, as
    /// the peerbench veth under loss, or datagrams that do not follow each other), one call takes several
    /// datagrams instead of one each.
    static let memberReadCount = 8
    static let memberReadCallsPerTurn = 2
    /// Datagrams read from the strangers' socket per turn of the loop, and the room for each.
    static let strangerReadCount = 16
    static let strangerSlotSize = 2_048
    /// The socket's kernel buffers, each way.
    static let socketBufferSize = 4 << 20

    public var scheme: String { UDPTransport.scheme }
    /// The node's event loop: the socket's, and where everything of this listener happens.
    public let eventLoop: any EventLoop
    /// The settings it was made with.
    public let settings: UDPTransport.Settings

    // What follows is internal, not private, where `UDPEdgeListener+Receiving` and `+Sending` (the two halves
    // of the data path, in files of their own) use it; like everything here, only on `eventLoop`.
    private let listenEndpoint: IPEndpoint
    var logger: Logger

    /// Whether `start` succeeded and `stop` was not called yet.
    public private(set) var isRunning = false
    var isStopped = false
    var delegate: (any EdgeListenerDelegate)?
    var handler: UDPChannelHandler?
    /// The channel, for closing from `deinit` (a `Channel` may be closed from any thread).
    private var channel: (any Channel)?
    /// The port's second socket, where the kernel steers datagrams from remotes without a steered edge
    /// (`SocketFilter`); nil where the kernel cannot steer (then everything arrives on `handler`'s).
    var strangerHandler: UDPChannelHandler?
    private var strangerChannel: (any Channel)?
    /// Whether the port gets two sockets and the kernel steers between them (Linux). Read when the socket is
    /// bound: set it before `start`. Tests turn it off to compare.
    public var steersStrangers = SocketFilter.isAvailable
    private var isSteeringUpdateScheduled = false
    var edges = DatagramEdgeTable<SocketAddress, UDPEdge>()
    var isFlushScheduled = false
    /// Datagrams gathered for one GSO write (with `usesSegmentationOffload`).
    var batch = UDPSendBatch()
    /// Whether large packets go with one GSO write per 45 fragments (else one write per fragment), and
    /// datagrams of one size to one remote are gathered into GSO writes; on where
    /// the kernel has UDP GSO. Off once a socket failed after GSO writes: some paths (IPsec, an MTU below
    /// 1,500) refuse them. Tests and benchmarks turn it off to compare.
    public var usesSegmentationOffload = System.supportsUDPSegmentationOffload
    /// Whether the socket asks for coalesced reads (UDP GRO); on where the kernel has it. Read when a socket
    /// is bound: set it before `start`.
    public var usesReceiveOffload = System.supportsUDPReceiveOffload
    /// Whether a GSO write was queued on the current socket.
    var hasWrittenWithOffload = false
    /// The id of the next fragmented message; starts at random so that a restarted sender's fragments are not
    /// taken for its earlier ones.
    var nextMessageID = UInt32.random(in: .min ... .max)
    var reassembler = UDPFragmentReassembler()
    /// Edges whose parity group is open: the flush sends their parity.
    var edgesWithOpenGroups: [UDPEdge] = []
    var isSweepScheduled = false
    /// The socket's TTL before any punch, by option (IP_TTL, IPV6_UNICAST_HOPS), read at its first punch: a
    /// later read could see the punch TTL while an earlier punch waits for the socket.
    var normalTTLs: [NIOBSDSocket.Option.RawValue: SocketOptionValue] = [:]

    /// The address the socket is bound to (with the actual port when `listen` gave port 0); nil before `start`.
    public private(set) var boundAddress: SocketAddress?
    /// The bound port; nil before `start`.
    public var port: Int? { boundAddress?.port }
    /// This end's URI on its edges: the bound address, or for a wildcard bind the first interface address.
    public private(set) var primaryURI: TransportURI
    /// The URIs of the bound address or, for a wildcard, of the interfaces (loopback last); set in `start`.
    private var addressURIs: [TransportURI] = []
    /// Public URIs peers reported, most recent last.
    private var observedURIs: [TransportURI] = []
    /// Hosts that are no underlay address (the node's own virtual IPs), as the last `refreshLocalAddresses` named.
    private var ignoredHosts: Set<String> = []

    /// Whether the host's interface addresses differ from the ones last listed: an interface went away under
    /// the socket (a cable pulled, the host moved), which fails its sends whatever was written.
    private var interfaceAddressesMoved: Bool {
        guard followsInterfaceAddresses else { return false }
        let isUnderlay = { (uri: TransportURI) in !self.ignoredHosts.contains(uri.hostAndPort?.host ?? "") }
        return localAddressURIs().filter(isUnderlay) != addressURIs.filter(isUnderlay)
    }

    // MARK: Counters

    /// Packets received (each reaches an edge: punch packets and fragments are not counted here, a packet
    /// put together from fragments is), and their bytes.
    public internal(set) var packetsReceived = 0
    public internal(set) var bytesReceived = 0
    /// Datagrams received, after splitting coalesced (GRO) reads, and the largest of them.
    public internal(set) var datagramsReceived = 0
    public internal(set) var largestDatagramReceived = 0
    /// Reads that held several coalesced datagrams (UDP GRO).
    public internal(set) var coalescedReads = 0
    /// Punch packets sent by `punch`, and punch packets received (and dropped).
    public internal(set) var punchPacketsSent = 0
    public internal(set) var punchPacketsReceived = 0
    /// Packets handed to the socket (queued for sending), and their bytes.
    public internal(set) var packetsSent = 0
    public internal(set) var bytesSent = 0
    /// Datagrams queued for sending (a fragmented packet counts each fragment; punch packets are not
    /// counted), and the largest of them.
    public internal(set) var datagramsSent = 0
    public internal(set) var largestDatagramSent = 0
    /// Packets sent as fragments, and the GSO writes (of fragments, or of gathered datagrams).
    public internal(set) var fragmentedPacketsSent = 0
    public internal(set) var offloadWrites = 0
    /// Parity datagrams sent and received, datagrams put back together from parity, and loss reports sent
    /// and received (`FECPacket`).
    public internal(set) var paritySent = 0
    public internal(set) var parityReceived = 0
    public internal(set) var recoveredDatagrams = 0
    public internal(set) var lossReportsSent = 0
    public internal(set) var lossReportsReceived = 0
    /// Datagrams read from the stranger socket, and times the steering program was attached (with the remotes
    /// it steered to the listener's socket the last time, and those left out for want of room).
    public internal(set) var strangerDatagrams = 0
    public private(set) var steeringUpdates = 0
    public private(set) var steeredRemotes = 0
    public private(set) var unsteeredRemotes = 0
    /// Times reads of the strangers' socket paused because strangers were read beyond `strangerBudget` while
    /// members' traffic flowed.
    public internal(set) var strangerReadPauses = 0
    /// Members first: how many strangers' datagrams are read while members' traffic flows (from the settings).
    public var strangerBudget: StrangerReadBudget
    /// Whether the kernel steers strangers to a socket of their own now.
    public var isSteering: Bool { strangerHandler != nil }
    /// Errors the socket reported without closing (e.g. ECONNREFUSED after a send to a closed port).
    public private(set) var socketErrors = 0
    /// Times an error closed the socket and it was bound again.
    public private(set) var socketFailures = 0
    /// Drops of sends; the reassembler counts the `fragment_*` ones.
    private var sendDrops = DropCounter<DropReason>()

    /// Drops so far by reason, fragments' included.
    public var drops: DropCounter<DropReason> { sendDrops.adding(reassembler.drops) }
    public var dropsByReason: [String: Int] { drops.byName }

    /// Fragmented messages waiting for more fragments, and the bytes held for them.
    public var messagesInReassembly: Int { reassembler.messageCount }
    public var reassemblyBytes: Int { reassembler.bufferedBytes }

    func countDrop(_ reason: DropReason) { sendDrops.count(reason) }

    /// The edges open now, one per remote.
    public var edgeCount: Int { edges.count }

    // MARK: Life cycle

    /// A listener that will bind `settings.listen` on `eventLoop` in `start`. Throws
    /// `UDPTransportError.badListenAddress` if `listen` is not an IP literal with a port.
    public init(settings: UDPTransport.Settings, eventLoop: any EventLoop, logger: Logger) throws {
        do throws(IPEndpointError) {
            listenEndpoint = try IPEndpoint(parsing: settings.listen)
        } catch {
            throw UDPTransportError.badListenAddress(settings.listen, reason: error.reason)
        }
        self.settings = settings
        strangerBudget = StrangerReadBudget(perSecond: settings.strangersPerSecond)
        self.eventLoop = eventLoop
        self.logger = logger
        self.logger[metadataKey: "transport"] = "udp"
        self.primaryURI = listenEndpoint.udpURI
    }

    deinit {
        channel?.close(promise: nil)
        strangerChannel?.close(promise: nil)
    }

    public func start(delegate: any EdgeListenerDelegate) throws {
        if eventLoop.inEventLoop {
            try startOnLoop(delegate: delegate)
        } else {
            // Safe: the listener and the delegate are handed to the loop here, used there while this thread
            // only waits, and after `start` (by the contract) used on the loop only.
            nonisolated(unsafe) let listener = self
            nonisolated(unsafe) let delegate = delegate
            try eventLoop.submit { try listener.startOnLoop(delegate: delegate) }.wait()
        }
    }

    private func startOnLoop(delegate: any EdgeListenerDelegate) throws {
        guard !isStopped else { throw EdgeError.stopped }
        guard !isRunning else { return }
        let handler = try bind(listenEndpoint.address)
        boundAddress = handler.channel?.localAddress ?? listenEndpoint.address
        addressURIs = localAddressURIs()
        primaryURI = addressURIs.first ?? listenEndpoint.udpURI
        self.delegate = delegate
        isRunning = true
        logger.info("udp listening", metadata: ["address": "\(boundAddress.map { IPEndpoint($0).description } ?? "?")"])
    }

    /// Binds the port on `address` (on the loop, at once) and makes its handler the listener's: with
    /// `steersStrangers`, two sockets in a `SO_REUSEPORT` group (the listener's, then the strangers') with the
    /// kernel's programs attached; without, or where that fails, one socket.
    private func bind(_ address: SocketAddress) throws -> UDPChannelHandler {
        guard steersStrangers else {
            let handler = try bindChannel(address, reusingPort: false)
            adopt(handler, stranger: nil)
            return handler
        }
        // Bound alone first, so that a port in use fails as it would without steering (a reuse-port socket
        // would share it with another process's).
        let probe = try bindChannel(address, reusingPort: false)
        let port = probe.channel?.localAddress?.port ?? address.port ?? 0
        probe.channel?.close(promise: nil)
        var fixed = address
        fixed.port = port
        let handler = try bindChannel(fixed, reusingPort: true)
        do {
            let stranger = try bindChannel(fixed, reusingPort: true, forStrangers: true)
            adopt(handler, stranger: stranger)
            try attachFilters()
        } catch {
            logger.warning("udp: the kernel does not steer strangers to a socket of their own; one socket takes everything",
                           metadata: ["error": "\(error)"])
            closeStrangerSocket()
        }
        return handler
    }

    private func adopt(_ handler: UDPChannelHandler, stranger: UDPChannelHandler?) {
        self.handler = handler
        channel = handler.channel
        strangerHandler = stranger
        strangerChannel = stranger?.channel
    }

    private func closeStrangerSocket() {
        // Forgotten first: on the loop the close reports at once (`channelDidClose`).
        let channel = strangerChannel
        strangerHandler = nil
        strangerChannel = nil
        channel?.close(promise: nil)
    }

    /// The wire-version filter on both sockets, and the steering program on the group.
    private func attachFilters() throws {
        guard let channel, let strangerChannel else { return }
        try SocketFilter.attach(SocketFilter.wireVersion, as: SocketFilter.attachFilter, to: channel)
        try SocketFilter.attach(SocketFilter.wireVersion, as: SocketFilter.attachFilter, to: strangerChannel)
        try updateSteering()
    }

    /// Marks `edge` steered (its remote's datagrams go to the listener's socket from the next update on).
    func steer(_ edge: UDPEdge) {
        edge.isSteered = true
        scheduleSteeringUpdate()
    }

    /// Attaches a new steering program once the current event-loop tick is over (edges made in one burst
    /// make one update).
    private func scheduleSteeringUpdate() {
        guard strangerHandler != nil, !isSteeringUpdateScheduled else { return }
        isSteeringUpdateScheduled = true
        eventLoop.assumeIsolated().execute { [self] in
            isSteeringUpdateScheduled = false
            guard strangerHandler != nil else { return }
            do {
                try updateSteering()
            } catch {
                // The last program stays attached; rather than steer by an old list, take everything on one socket.
                logger.warning("udp: cannot update the steering program; one socket takes everything",
                               metadata: ["error": "\(error)"])
                closeStrangerSocket()
            }
        }
    }

    private func updateSteering() throws {
        guard let channel else { return }
        let remotes = edges.all.filter { $0.isSteered && !$0.isClosed }.map(\.remote)
        let (program, left) = SocketFilter.steering(to: remotes)
        try SocketFilter.attach(program, as: SocketFilter.attachReuseportProgram, to: channel)
        steeringUpdates += 1
        steeredRemotes = remotes.count - left
        if left > 0, unsteeredRemotes == 0 {
            logger.notice("udp: more remotes than the steering program holds; the rest share the strangers' socket",
                          metadata: ["left_out": "\(left)"])
        }
        unsteeredRemotes = left
    }

    /// Binds a new channel to `address`, on the loop, at once: the listener's socket, or with `forStrangers`
    /// the strangers' one, read differently: one `recvmmsg` of up to `strangerReadCount` datagrams a turn
    /// (the listener's socket has 16 reads a turn, `memberReadCount` per call; a flood gets a small share of
    /// the loop), without GRO
    /// (a stranger's datagrams are single), each in `strangerSlotSize` bytes (WOW's datagrams are at most
    /// 1,452).
    private func bindChannel(_ address: SocketAddress, reusingPort: Bool,
                             forStrangers: Bool = false) throws -> UDPChannelHandler {
        let handler = UDPChannelHandler(listener: self)
        handler.isStrangerSocket = forStrangers
        let boundHandler = NIOLoopBound(handler, eventLoop: eventLoop)
        let highWater = UDPEdgeListener.maximumQueuedBytes
        let usesReceiveOffload = usesReceiveOffload && !forStrangers
        let readSize = forStrangers ? UDPEdgeListener.strangerReadCount * UDPEdgeListener.strangerSlotSize
            : UDPEdgeListener.memberReadCount * UDPEdgeListener.receiveBufferSize
        var bootstrap = DatagramBootstrap(group: eventLoop)
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: readSize))
            .channelOption(.maxMessagesPerRead, value: UInt(forStrangers ? 1 : UDPEdgeListener.memberReadCallsPerTurn))
            .channelOption(.socketOption(.init(rawValue: SocketFilter.reusePort)), value: reusingPort ? 1 : 0)
            // Room for bursts: a node busy sealing for a moment must not lose what arrives meanwhile (the
            // kernel caps these at net.core.rmem_max / wmem_max).
            .channelOption(.socketOption(.so_rcvbuf), value: UDPEdgeListener.socketBufferSize)
            .channelOption(.socketOption(.so_sndbuf), value: UDPEdgeListener.socketBufferSize)
            .channelOption(.writeBufferWaterMark, value: .init(low: highWater / 2, high: highWater))
        bootstrap = bootstrap.channelOption(ChannelOptions.datagramVectorReadMessageCount,
                                            value: forStrangers ? UDPEdgeListener.strangerReadCount : UDPEdgeListener.memberReadCount)
        bootstrap = bootstrap
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if usesReceiveOffload {
                        // Coalesced reads, with the size of their datagrams (without it they cannot be split).
                        try channel.syncOptions?.setOption(.datagramReceiveOffload, value: true)
                        try channel.syncOptions?.setOption(.datagramReceiveSegmentSize, value: true)
                    }
                    try channel.pipeline.syncOperations.addHandler(boundHandler.value)
                }
            }
        // On its own loop, the bootstrap sets the channel up, registers and binds it without waiting for
        // anything, so the future is already complete here (and `whenComplete` runs at once). The loop must
        // not block on its own future, so this is the only way to bind synchronously from it.
        let future = bootstrap.bind(to: address)
        var result: Result<any Channel, any Error>?
        future.assumeIsolated().whenComplete { result = $0 }
        let name = IPEndpoint(address).description
        switch result {
        case .success:
            return handler
        case .failure(let error):
            // A failed bind leaves the registered channel open: close it.
            handler.channel?.close(promise: nil)
            throw UDPTransportError.bindFailed(address: name, reason: "\(error)")
        case nil:
            future.whenSuccess { $0.close(promise: nil) }
            throw UDPTransportError.bindFailed(address: name, reason: "the socket did not bind at once on the event loop")
        }
    }

    /// The bound address if specific; for a wildcard, the interface addresses of its family, loopback last.
    private func localAddressURIs() -> [TransportURI] {
        guard let bound = boundAddress.map(IPEndpoint.init) else { return [] }
        do {
            return try bound.reachableEndpoints().map(\.udpURI)
        } catch {
            logger.warning("cannot list network interfaces", metadata: ["error": "\(error)"])
            return bound.loopbackEndpoint.map { [$0.udpURI] } ?? []
        }
    }

    public var followsInterfaceAddresses: Bool { listenEndpoint.isWildcard }

    public func refreshLocalAddresses(ignoring hosts: Set<String>) -> Bool {
        ignoredHosts = hosts
        guard isRunning, followsInterfaceAddresses,
              let fresh = IPEndpoint.changedAddressURIs(localAddressURIs(), from: addressURIs,
                                                        scheme: UDPTransport.scheme, ignoring: hosts)
        else { return false }
        addressURIs = fresh
        primaryURI = fresh.first ?? primaryURI
        observedURIs.removeAll()
        logger.info("interface addresses changed", metadata: ["now": "\(fresh.map(\.text).joined(separator: ", "))"])
        return true
    }

    /// The advertised URIs, then the bound address (or the interface addresses, loopback last), then up to 4
    /// public URIs peers reported (most recent last).
    public var localURIs: [TransportURI] {
        var uris = settings.advertise
        for uri in addressURIs + observedURIs where !uris.contains(uri) { uris.append(uri) }
        return uris
    }

    /// Closes every edge (each reports `edgeDidClose`, scheduled), sends what is queued, closes the socket
    /// and accepts nothing more.
    public func stop() {
        guard !isStopped else { return }
        isStopped = true
        isRunning = false
        delegate = nil
        let open = edges.removeAll(sortedBy: { $0.remoteURI < $1.remoteURI })
        reassembler.removeAll()
        for edge in open { edge.close() }
        writeBatch()
        if let handler {
            handler.flush()
            handler.channel?.close(promise: nil)
        }
        handler = nil
        channel = nil
        closeStrangerSocket()
        logger.info("udp stopped")
    }

    // MARK: Edges

    public func createEdge(to uri: TransportURI, completion: @escaping (Result<any Edge, EdgeError>) -> Void) {
        let result: Result<SocketAddress, EdgeError>
        do throws(EdgeError) {
            let endpoint = try IPEndpoint(uri: uri, scheme: UDPTransport.scheme)
            result = isRunning ? socketAddress(for: endpoint, uri: uri) : .failure(.stopped)
        } catch {
            result = .failure(error)
        }
        eventLoop.assumeIsolated().execute { [self] in
            switch result {
            case .failure(let error):
                completion(.failure(error))
            case .success(let remote):
                // Checked again now: the listener may have stopped, or the remote's first datagram made an edge.
                guard isRunning else { return completion(.failure(.stopped)) }
                let edge = edges.edge(to: remote) {
                    UDPEdge(listener: self, remote: remote, localURI: primaryURI, remoteURI: uri, isInbound: false)
                }
                if !edge.isSteered { steer(edge) }
                completion(.success(edge))
            }
        }
    }

    /// The address to send to from this socket: IPv4 peers of an IPv6 (dual-stack) socket as IPv4-mapped.
    private func socketAddress(for endpoint: IPEndpoint, uri: TransportURI) -> Result<SocketAddress, EdgeError> {
        let socketIsIPv6 = (boundAddress.map(IPEndpoint.init) ?? listenEndpoint).isIPv6
        switch (socketIsIPv6, endpoint.isIPv6) {
        case (false, false), (true, true):
            return .success(endpoint.address)
        case (true, false):
            guard let mapped = endpoint.mappedIPv6 else {
                return .failure(.badLocation(uri, reason: "cannot map the IPv4 address to IPv6"))
            }
            return .success(mapped.address)
        case (false, true):
            return .failure(.unreachable(uri, reason: "this node's udp socket is IPv4 (listen \(settings.listen)); listen on [::]:<port> to reach IPv6 peers"))
        }
    }

    public var observedURIsAreMappings: Bool { true }

    /// Records a public URI a peer sees this listener at (its NAT mapping), if it is a valid `udp` URI other
    /// than the local ones; a repeated one moves to the end.
    public func learnObservedURI(_ uri: TransportURI) {
        guard let endpoint = try? IPEndpoint(uri: uri, scheme: UDPTransport.scheme) else { return }
        let normalized = endpoint.udpURI
        guard !settings.advertise.contains(normalized), !addressURIs.contains(normalized) else { return }
        observedURIs.removeAll { $0 == normalized }
        observedURIs.append(normalized)
        if observedURIs.count > UDPEdgeListener.maximumObservedURIs { observedURIs.removeFirst() }
    }

    /// Called by a closing edge: the remote's next datagram makes a new edge.
    func remove(_ edge: UDPEdge) {
        edges.remove(edge, for: edge.remote)
        if edge.isSteered { scheduleSteeringUpdate() }
    }

    // MARK: Socket events

    func socketReportedError(_ error: any Error) {
        socketErrors += 1
        logger.debug("udp socket error", metadata: ["error": "\(error)"])
    }

    /// The channel of `handler` closed: after `stop`, expected; otherwise an error closed it, and the same
    /// address is bound again.
    func channelDidClose(_ handler: UDPChannelHandler, error: (any Error)?) {
        if handler === strangerHandler {
            // Its datagrams go to the listener's socket now (the program's index is gone).
            strangerHandler = nil
            strangerChannel = nil
            guard !isStopped else { return }
            logger.warning("udp: the strangers' socket closed; one socket takes everything",
                           metadata: ["error": "\(error.map { "\($0)" } ?? "none")"])
            return
        }
        guard handler === self.handler else { return }
        self.handler = nil
        channel = nil
        closeStrangerSocket()
        // Datagrams gathered for the socket that failed go with it (as those queued in its channel).
        _ = batch.take()
        normalTTLs = [:]
        guard !isStopped else { return }
        socketFailures += 1
        // A move fails the socket without an error to tell (`error` is nil then): GSO stays on, or it would be off
        // for good after every move.
        if hasWrittenWithOffload && !Self.isNoRoute(error) && !interfaceAddressesMoved {
            // NIO closes the socket on a send error it cannot survive, and a refused GSO write (EINVAL, EIO) is
            // one; without knowing which write failed, fragments go one datagram each from now on.
            usesSegmentationOffload = false
            logger.warning("udp socket failed after GSO writes; sending fragments without GSO from now on")
        }
        hasWrittenWithOffload = false
        // NIO closes a datagram channel on a send error other than EMSGSIZE/EHOSTUNREACH without reporting
        // which; `error` is only the last one the channel reported, if any.
        var metadata: Logger.Metadata = ["address": "\(boundAddress.map { IPEndpoint($0).description } ?? "?")"]
        if let error { metadata["last_error"] = "\(error)" }
        logger.error("udp socket closed by a send or receive error; binding it again", metadata: metadata)
        rebind(after: .zero)
    }

    /// A send failed for want of a route (the interface went away: a cable pulled, a host moved), not
    /// because of what was written.
    private static func isNoRoute(_ error: (any Error)?) -> Bool {
        guard let code = (error as? IOError)?.errnoCode else { return false }
        return code == ENETUNREACH || code == EHOSTUNREACH || code == EADDRNOTAVAIL || code == ENODEV
    }

    private func rebind(after delay: TimeAmount) {
        eventLoop.assumeIsolated().scheduleTask(in: delay) { [self] in
            guard !isStopped, self.handler == nil, let address = boundAddress else { return }
            do {
                _ = try bind(address)
                logger.info("udp socket bound again", metadata: ["address": "\(IPEndpoint(address))"])
            } catch {
                logger.error("udp socket cannot be bound again; retrying in 1 s", metadata: ["error": "\(error)"])
                rebind(after: .seconds(1))
            }
        }
    }
}
