import Logging

/// What a transport factory gets besides its settings.
public struct TransportContext {
    /// The node's clock and timers.
    public var scheduler: any Scheduler
    /// A random stream of the transport's own.
    public var random: SeededRandom
    public var logger: Logger

    public init(scheduler: any Scheduler, random: SeededRandom, logger: Logger) {
        self.scheduler = scheduler
        self.random = random
        self.logger = logger
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
