import Foundation
import Logging
import NIOCore
import NIOPosix
import Plugins
import WOWKit
import WOWSimulator

/// Several real nodes in one process, on one event loop, over real sockets on loopback: for tests and the
/// local demo. Each node is a full `Node` with its own transports; only the loop is shared.
public final class LocalOverlay: Sendable {
    public let group: MultiThreadedEventLoopGroup
    public let loop: any EventLoop
    private let state: NIOLoopBound<State>

    private final class State {
        var nodes: [Node] = []
        var live: [Bool] = []
    }

    /// The overlay's own network authority, fresh for each overlay; nil when its nodes run without security.
    public let authority: NetworkAuthorityKey?

    /// An overlay whose nodes are members of a fresh network (`secure`), each with a fresh key and a
    /// certificate valid for a day, or run without security.
    public init(secure: Bool = true) throws {
        authority = secure ? NetworkAuthorityKey.create(name: "local", now: SystemClock.unixTime()) : nil
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        loop = group.next()
        let loop = self.loop
        state = try loop.submit { NIOLoopBound(State(), eventLoop: loop) }.wait()
    }

    /// Starts a node with these transports (scheme and settings YAML) and bootstrap URIs; returns its index.
    @discardableResult
    public func addNode(name: String, transports: [(scheme: String, settings: String)], bootstrap: [TransportURI],
                        liveness: NodeConfig.Liveness = .init(), logLevel: Logger.Level = .critical) throws -> Int {
        let entries = try transports.map { NodeConfig.PluginEntry(name: $0.scheme, settings: try PluginSettings(yaml: $0.settings)) }
        let state = self.state
        let loop = self.loop
        return try loop.submit {
            var config = NodeConfig(name: name, transports: entries, overlords: PluginCatalog.defaultOverlords,
                                    bootstrap: bootstrap)
            config.liveness = liveness
            config.security = try self.membership(name: name)
            let registries = WOW.registries()
            var logger = Logger(label: "wow.local")
            // WOW_LOCAL_LOG=<node name> logs that node at debug level (WOW_LOCAL_LOG_LEVEL=trace for more); `all`
            // logs every node.
            let environment = ProcessInfo.processInfo.environment
            let chosen = environment["WOW_LOCAL_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .debug
            logger.logLevel = [name, "all"].contains(environment["WOW_LOCAL_LOG"]) ? chosen : logLevel
            let node = Node(config: config, scheduler: EventLoopScheduler(eventLoop: loop), random: .fromSystem(),
                            transports: registries.transports, overlords: registries.overlords, logger: logger)
            try node.start()
            state.value.nodes.append(node)
            state.value.live.append(true)
            return state.value.nodes.count - 1
        }.wait()
    }

    /// A fresh key and certificate of this overlay's network for node `name`.
    private func membership(name: String) throws -> NodeConfig.Security {
        guard let authority else { return .insecure }
        let identity = NodeIdentity.generate()
        let now = SystemClock.unixTime()
        var serial = SystemRandomNumberGenerator()
        let certificate = try authority.issue(name: name, publicKey: identity.publicKey, virtualIPs: [],
                                              notBefore: now - 60, notAfter: now + 86_400, serial: serial.next())
        return .secured(NodeConfig.Secured(credentials: try NodeCredentials(identity: identity, certificate: certificate,
                                                                             authority: authority.authority)))
    }

    /// Runs `body` on the loop with every node and whether it is live.
    public func inspect<T: Sendable>(_ body: @escaping @Sendable ([Node], [Bool]) -> T) throws -> T {
        let state = self.state
        return try loop.submit { body(state.value.nodes, state.value.live) }.wait()
    }

    /// Every node and whether it is live, for code already running on the overlay's loop (a timer there).
    public func nodesOnLoop() -> [(node: Node, isLive: Bool)] {
        zip(state.value.nodes, state.value.live).map { (node: $0, isLive: $1) }
    }

    public func status(_ index: Int) throws -> NodeStatus { try inspect { nodes, _ in nodes[index].status() } }

    public func uris(_ index: Int) throws -> [TransportURI] { try inspect { nodes, _ in nodes[index].info.uris } }

    /// Sends one overlay echo (what `wow ping` sends) from node `index` to `destination` and waits for its outcome.
    public func echo(_ index: Int, to destination: Address, timeout: Duration) throws -> Result<EchoOutcome, EchoFailure> {
        let state = self.state
        let promise = loop.makePromise(of: Result<EchoOutcome, EchoFailure>.self)
        loop.execute {
            state.value.nodes[index].echo(destination, sequence: 0, timeout: timeout) { promise.succeed($0) }
        }
        return try promise.futureResult.wait()
    }

    /// Kills a node: no goodbye, its sockets close.
    public func kill(_ index: Int) throws {
        let state = self.state
        try loop.submit {
            state.value.nodes[index].stop(graceful: false)
            state.value.live[index] = false
        }.wait()
    }

    /// How many live nodes lack a structured connection to their true left or right live neighbour.
    public func ringViolations() throws -> Int {
        try inspect { nodes, live in
            let alive = nodes.indices.filter { live[$0] }.map { nodes[$0] }
            return RingOracle(alive.map(\.address)).violations(among: alive.map { (address: $0.address, table: $0.table) })
        }
    }

    /// Polls until the ring is consistent or `timeout` passes; returns the seconds it took, or nil.
    public func waitForConsistentRing(timeout: Double) throws -> Double? {
        let start = NIODeadline.now()
        while true {
            if try ringViolations() == 0 { return Double((NIODeadline.now() - start).nanoseconds) / 1e9 }
            if Double((NIODeadline.now() - start).nanoseconds) / 1e9 > timeout { return nil }
            try loop.scheduleTask(in: .milliseconds(100)) {}.futureResult.wait()
        }
    }

    /// Stops every node gracefully and the loop.
    public func shutdown() {
        let state = self.state
        try? loop.submit {
            for (i, node) in state.value.nodes.enumerated() where state.value.live[i] { node.stop(graceful: true) }
        }.wait()
        try? group.syncShutdownGracefully()
    }
}
