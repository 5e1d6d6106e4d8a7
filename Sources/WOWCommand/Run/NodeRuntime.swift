import Logging
import NIOCore
import NIOPosix
import Transports
import WOWKit

/// Runs one node over real sockets: its event loop, its transports, its control socket, and an orderly
/// shutdown. Everything of the node lives on one event loop; this type only hands work to it.
public final class NodeRuntime: Sendable {
    public let group: MultiThreadedEventLoopGroup
    public let loop: any EventLoop
    private let node: NIOLoopBound<Node>
    private let control: (any Channel)?
    public let controlPath: String?
    /// Rereads the revocation list file as it changes; nil without one.
    private let revocationWatcher: Task<Void, Never>?
    /// The Prometheus endpoint and the metrics behind it (the node holds its observer weakly); nil without.
    private let metrics: (channel: any Channel, metrics: NIOLoopBound<NodeMetrics>)?
    /// The node's interface on the virtual network (its TUN device); nil when the config asks for none.
    private let virtualInterface: NIOLoopBound<VirtualInterface>?
    /// The TUN device's name; nil without one.
    public let deviceName: String?
    /// The web view (`--web`): its server and the timer that shows it the node; nil without.
    private let web: (channel: any Channel, sampler: RepeatedTask)?
    /// The resolver for member names (`--dns`); nil without.
    private let dns: (any Channel)?

    private init(group: MultiThreadedEventLoopGroup, loop: any EventLoop, node: NIOLoopBound<Node>,
                 control: (any Channel)?, controlPath: String?, revocationWatcher: Task<Void, Never>?,
                 metrics: (channel: any Channel, metrics: NIOLoopBound<NodeMetrics>)?,
                 virtualInterface: NIOLoopBound<VirtualInterface>?, deviceName: String?,
                 web: (channel: any Channel, sampler: RepeatedTask)?, dns: (any Channel)?) {
        self.group = group
        self.loop = loop
        self.node = node
        self.control = control
        self.controlPath = controlPath
        self.revocationWatcher = revocationWatcher
        self.metrics = metrics
        self.virtualInterface = virtualInterface
        self.deviceName = deviceName
        self.web = web
        self.dns = dns
    }

    /// Where the resolver for member names listens; nil without one.
    public var dnsAddress: SocketAddress? { dns?.localAddress }

    /// Where the Prometheus endpoint listens (its port chosen by the system if 0 was asked for); nil without.
    public var metricsAddress: SocketAddress? { metrics?.channel.localAddress }

    /// The web view's listening channel (`--web`); nil without.
    var webChannel: (any Channel)? { web?.channel }

    /// Builds and starts the node and, when `controlPath` is given, its control socket there. A secured node
    /// with a revocation list file has it reread every `revocationPollInterval` while the file changes.
    public static func start(config: NodeConfig, transports: TransportRegistry, overlords: OverlordRegistry,
                             controlPath: String?, logger: Logger,
                             revocationPollInterval: Duration = .seconds(10),
                             metricsAddress: SocketAddress? = nil, webAddress: SocketAddress? = nil,
                             dns: (address: SocketAddress, domain: String)? = nil) throws -> NodeRuntime {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        // The registries hold plugin factories (closures). They are handed to the loop once, here, and used
        // only there, while this thread waits; nothing else touches them.
        nonisolated(unsafe) let transports = transports
        nonisolated(unsafe) let overlords = overlords
        do {
            let node = try loop.submit {
                let scheduler = EventLoopScheduler(eventLoop: loop)
                let node = Node(config: config, scheduler: scheduler, random: .fromSystem(), transports: transports,
                                overlords: overlords, logger: logger)
                try node.start()
                return NIOLoopBound(node, eventLoop: loop)
            }.wait()
            var virtualInterface: NIOLoopBound<VirtualInterface>?
            if let settings = config.virtualNetwork {
                virtualInterface = try attachVirtualNetwork(
                    settings, certificate: config.security.credentials?.certificate, node: node, loop: loop)
            }
            var metrics: (channel: any Channel, metrics: NIOLoopBound<NodeMetrics>)?
            if let metricsAddress {
                let bound = try loop.submit {
                    let metrics = NodeMetrics()
                    node.value.observer = metrics
                    return NIOLoopBound(metrics, eventLoop: loop)
                }.wait()
                let channel = try MetricsServer.bind(metricsAddress, on: loop, node: node, metrics: bound)
                metrics = (channel, bound)
            }
            var web: (channel: any Channel, sampler: RepeatedTask)?
            if let webAddress {
                let feed = OverlayFeed(mode: .node, title: "node \(config.name)")
                let sampler = try WebView.sample(on: loop, every: .milliseconds(500), feed: feed, publishesStatus: true) {
                    [(node.value, true)]
                }
                do {
                    web = (try WebView.serve(feed, at: webAddress, on: loop), sampler)
                } catch {
                    sampler.cancel()
                    throw error
                }
            }
            var dnsChannel: (any Channel)?
            if let dns {
                dnsChannel = try DNSServer.bind(dns.address, on: loop, node: node, responder: DNSResponder(domain: dns.domain))
            }
            var control: (any Channel)?
            if let controlPath {
                control = try ControlServer.bind(path: controlPath, on: loop, node: node)
            }
            var watcher: Task<Void, Never>?
            if case .secured(let secured) = config.security, let path = secured.revocationFile {
                watcher = watchRevocations(path: path, node: node, loop: loop, logger: logger,
                                           interval: revocationPollInterval)
            }
            return NodeRuntime(group: group, loop: loop, node: node, control: control, controlPath: controlPath,
                               revocationWatcher: watcher, metrics: metrics, virtualInterface: virtualInterface,
                               deviceName: config.virtualNetwork?.deviceName, web: web, dns: dnsChannel)
        } catch {
            try? group.syncShutdownGracefully()
            throw error
        }
    }

    /// Creates the TUN device and joins it to the node: packets it reads go into the overlay, packets the
    /// overlay delivers are written to it. Needs root (or CAP_NET_ADMIN).
    private static func attachVirtualNetwork(_ settings: VirtualNetwork.Settings, certificate: MembershipCertificate?,
                                             node: NIOLoopBound<Node>, loop: any EventLoop) throws -> NIOLoopBound<VirtualInterface> {
        // The config parser checked that a secured node with a virtual IP asks for a device; the interface
        // checks again below, on the loop.
        guard let certificate else { throw VirtualNetworkError.notSecured }
        let device = try TunDevice.open(settings: settings, addresses: try settings.localIPs(of: certificate).get())
        nonisolated(unsafe) let handedOver = device
        do {
            let interface = try loop.submit {
                NIOLoopBound(try VirtualInterface(node: node.value, device: handedOver, settings: settings), eventLoop: loop)
            }.wait()
            // Each packet read is handed to the interface on the loop the device reads on (the node's).
            // A super-segment comes with its segment size: the interface sends it on one segment at a time.
            try device.start(on: loop,
                             receive: { packet, segmentSize in interface.value.receiveFromDevice(packet, segmentSize: segmentSize) },
                             dropped: { reason in interface.value.deviceDropped(reason) })
            return interface
        } catch {
            device.close()
            throw error
        }
    }

    /// Polls the revocation list file off the node's loop and hands each new list to the node on its loop.
    /// A file that cannot be read or parsed is logged and the node keeps the list it has.
    private static func watchRevocations(path: String, node: NIOLoopBound<Node>, loop: any EventLoop,
                                         logger: Logger, interval: Duration) -> Task<Void, Never> {
        Task.detached {
            var watch = RevocationWatch(path: path)
            // The config loaded the list at start; this first poll only marks the version seen (and applies
            // a change made since).
            var isFirstPoll = true
            while !Task.isCancelled {
                switch watch.poll() {
                case .unchanged:
                    break
                case .updated(let list):
                    loop.execute { node.value.updateRevocations(list.fingerprints) }
                    if !isFirstPoll {
                        logger.notice("revocation list reloaded",
                                      metadata: ["file": "\(path)", "revoked": "\(list.fingerprints.count)"])
                    }
                case .failed(let failure):
                    logger.error("cannot use the revocation list; keeping the previous one",
                                 metadata: ["file": "\(path)", "error": "\(failure)"])
                }
                isFirstPoll = false
                do {
                    try await Task.sleep(for: interval)
                } catch {
                    return
                }
            }
        }
    }

    /// The node's status, taken on its loop.
    public func status() throws -> NodeStatus {
        let node = self.node
        return try loop.submit { node.value.status() }.wait()
    }

    /// Runs `body` on the node's loop with the node, and waits for its result.
    public func withNode<T: Sendable>(_ body: @escaping @Sendable (Node) throws -> T) throws -> T {
        let node = self.node
        return try loop.submit { try body(node.value) }.wait()
    }

    /// Tells peers goodbye, closes transports and the control socket, and stops the loop.
    public func shutdown() {
        let node = self.node
        revocationWatcher?.cancel()
        let virtualInterface = self.virtualInterface
        try? loop.submit {
            (virtualInterface?.value.device as? TunDevice)?.close()
            node.value.stop(graceful: true)
        }.wait()
        try? control?.close().wait()
        try? metrics?.channel.close().wait()
        try? dns?.close().wait()
        web?.sampler.cancel()
        try? web?.channel.close().wait()
        if let controlPath { ControlServer.removeSocketFile(controlPath) }
        // Let the goodbye packets leave before the loop goes away.
        try? loop.scheduleTask(in: .milliseconds(50)) {}.futureResult.wait()
        try? group.syncShutdownGracefully()
    }
}
