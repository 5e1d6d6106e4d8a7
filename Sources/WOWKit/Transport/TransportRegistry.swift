import Logging
import NIOCore

/// What a transport factory gets besides its settings.
public struct TransportContext {
    /// The node's clock and timers.
    public var scheduler: any Scheduler
    /// A random stream of the transport's own.
    public var random: SeededRandom
    public var logger: Logger
    /// The event loop the node runs on, for transports over real sockets (nil in the simulator). Socket
    /// transports bind their channels to this loop, so their callbacks need no hop to reach the node.
    public var eventLoop: (any EventLoop)?

    public init(scheduler: any Scheduler, random: SeededRandom, logger: Logger, eventLoop: (any EventLoop)? = nil) {
        self.scheduler = scheduler
        self.random = random
        self.logger = logger
        self.eventLoop = eventLoop
    }
}

/// A transport plugin: a URI scheme, typed settings, and a factory for its listener.
public protocol TransportPlugin {
    associatedtype Settings: Decodable
    /// The URI scheme, also the name the config uses.
    static var scheme: String { get }
    static func makeListener(settings: Settings, context: TransportContext) throws -> any EdgeListener
}

/// Maps URI schemes to transport factories. The config names schemes; the core names none.
public struct TransportRegistry {
    public typealias Factory = (PluginSettings, TransportContext) throws -> any EdgeListener
    private var factories: [String: Factory] = [:]

    public init() {}

    /// Registers a plugin type under its scheme (replacing any earlier one).
    public mutating func register<Plugin: TransportPlugin>(_ plugin: Plugin.Type) {
        factories[Plugin.scheme] = { settings, context in
            try Plugin.makeListener(settings: try settings.decode(Plugin.Settings.self, for: Plugin.scheme),
                                    context: context)
        }
    }

    /// Registers a factory under `scheme`, for transports that need more than settings (e.g. the simulator's
    /// `memory` network object).
    public mutating func register(scheme: String, factory: @escaping Factory) {
        factories[scheme] = factory
    }

    public var schemes: [String] { factories.keys.sorted() }

    public func contains(_ scheme: String) -> Bool { factories[scheme] != nil }

    public func makeListener(scheme: String, settings: PluginSettings, context: TransportContext) throws -> any EdgeListener {
        guard let factory = factories[scheme] else {
            throw PluginError.unknownPlugin(kind: "transport", name: scheme, known: schemes)
        }
        return try factory(settings, context)
    }
}
