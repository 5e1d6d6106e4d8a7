import Foundation
import Logging
import Plugins
import Transports
import WOWKit

/// Builds `Node`s that run on a `SimulationScheduler`'s virtual time: the one setup the simulator
/// (`OverlaySimulation`), the tests and the plugin templates' tests share.
///
/// Each node it makes reads its wall clock (certificate validity) as `epoch` plus the virtual seconds, and
/// `secured(_:)` turns on deterministic session keys, so that together with a `SeededRandom` a run replays
/// exactly from its seed. The builder makes the node and leaves it stopped: the caller sets its callbacks
/// (`onDeliver`, `onTableChange`) and calls `start()`.
///
/// A typical test:
/// ```swift
/// let builder = SimulatedNodeBuilder(scheduler: scheduler)
/// var config = NodeConfig(name: "a", transports: [.init(name: MemoryTransport.scheme)],
///                         overlords: PluginCatalog.defaultOverlords, bootstrap: [])
/// config.security = .secured(SimulatedNodeBuilder.secured(credentials))
/// let node = builder.makeNode(config: config, transports: .memory(network, host: host),
///                             random: SeededRandom(seed: 1))
/// try node.start()
/// ```
public struct SimulatedNodeBuilder {
    /// The wall-clock time (seconds since 1970) at virtual time zero unless told otherwise.
    public static let defaultEpoch: Int64 = 1_790_000_000

    /// The virtual time every node of this builder runs on.
    public let scheduler: SimulationScheduler
    /// The wall-clock time (seconds since 1970) at virtual time zero.
    public let epoch: Int64
    /// The link strategies the nodes can run, by name: WOW's own (`PluginCatalog`) unless told otherwise.
    public var overlords: OverlordRegistry
    /// The logger of a node made without one of its own.
    public var logger: Logger

    /// - Parameters:
    ///   - overlords: the link strategies the nodes know; nil for WOW's own (`PluginCatalog`).
    ///   - logger: the nodes' logger unless `makeNode` is given one; unless given, `Node`'s default at the level
    ///     `WOW_SIM_LOG` names (as for `wow sim`), else `info`.
    public init(scheduler: SimulationScheduler, epoch: Int64 = SimulatedNodeBuilder.defaultEpoch,
                overlords: OverlordRegistry? = nil, logger: Logger = SimulatedNodeBuilder.defaultLogger) {
        self.scheduler = scheduler
        self.epoch = epoch
        if let overlords {
            self.overlords = overlords
        } else {
            var registry = OverlordRegistry()
            PluginCatalog.registerOverlords(in: &registry)
            self.overlords = registry
        }
        self.logger = logger
    }

    /// `wow.node` at the level `WOW_SIM_LOG` names, else `info`.
    public static var defaultLogger: Logger {
        var logger = Logger(label: "wow.node")
        if let level = logLevelFromEnvironment { logger.logLevel = level }
        return logger
    }

    /// The level `WOW_SIM_LOG` names (`trace`, `debug`, ...), if any: simulated nodes log at it.
    public static var logLevelFromEnvironment: Logger.Level? {
        ProcessInfo.processInfo.environment["WOW_SIM_LOG"].flatMap(Logger.Level.init(rawValue:))
    }

    /// Seconds since 1970 now, on virtual time: what each node's `wallClock` reads.
    public var unixTime: Int64 { Self.unixTime(epoch: epoch, scheduler: scheduler) }

    private static func unixTime(epoch: Int64, scheduler: SimulationScheduler) -> Int64 {
        epoch + scheduler.now.nanoseconds / 1_000_000_000
    }

    /// A simulated node's security settings: these credentials, with session keys drawn from the node's seeded
    /// random generator (`SecureChannel.Settings.deterministicKeys`) so that a seed replays the run. Set it as
    /// `config.security = .secured(SimulatedNodeBuilder.secured(credentials))`.
    public static func secured(_ credentials: NodeCredentials) -> NodeConfig.Secured {
        var secured = NodeConfig.Secured(credentials: credentials)
        secured.channel.deterministicKeys = true
        return secured
    }

    /// A node of `config` on this builder's virtual time, not yet started: its transports from `transports`,
    /// its overlords from `overlords`, its randomness from `random`, its wall clock on virtual time.
    public func makeNode(config: NodeConfig, transports: TransportRegistry, random: SeededRandom,
                         logger: Logger? = nil) -> Node {
        let node = Node(config: config, scheduler: scheduler, random: random, transports: transports,
                        overlords: overlords, logger: logger ?? self.logger)
        let scheduler = self.scheduler
        let epoch = self.epoch
        node.wallClock = { SimulatedNodeBuilder.unixTime(epoch: epoch, scheduler: scheduler) }
        node.stampClock = { UInt64(epoch) * 1_000_000 + UInt64(scheduler.now.nanoseconds / 1_000) }
        return node
    }

    /// Credentials of the network of `authority` for node `name`: a key drawn from the name
    /// (`NodeIdentity.deterministic`), a certificate valid from a minute before `epoch` for `validity` seconds.
    public func member(_ name: String, of authority: NetworkAuthorityKey, virtualIPs: [VirtualIP] = [],
                       validity: Int64 = 86_400, serial: UInt64 = 1) throws -> NodeCredentials {
        try authority.member(name: name, identity: .deterministic(seed: Array(name.utf8)), virtualIPs: virtualIPs,
                             notBefore: epoch - 60, notAfter: epoch + validity, serial: serial)
    }
}

extension TransportRegistry {
    /// The simulated transports of `host` on `network`: `memory` (datagrams, think UDP), `memory-stream`
    /// (think TCP or TLS) and `relay` (over the node's other connections). A node runs those its config names.
    public static func memory(_ network: MemoryNetwork, host: MemoryHostID) -> TransportRegistry {
        var transports = TransportRegistry()
        transports.register(scheme: MemoryTransport.scheme) { _, _ in network.makeListener(host: host) }
        transports.register(scheme: MemoryTransport.streamScheme) { _, _ in network.makeStreamListener(host: host) }
        transports.register(RelayTransport.self)
        return transports
    }
}
