import WOWKit

/// The plugin: a URI scheme, typed settings, and the factory the node's `TransportRegistry` calls once per
/// node that lists the scheme in its config (`transports: [{ scheme: loopback, settings: {...} }]`).
///
/// `loopback` is a datagram transport between nodes of one process, through a `LoopbackSwitch`: the smallest
/// complete transport (no sockets), so that everything a transport must do is visible. To reach other
/// machines, keep the shape and replace the switch with a socket (`Sources/Transports/UDP` of WOW is the model).
public enum LoopbackTransport: TransportPlugin {
    /// HOOK: the URI scheme, also the name configs use. Lowercase letters, digits, '+', '-', '.'.
    public static let scheme = "loopback"

    /// HOOK: your settings, decoded from the config entry's `settings` mapping. Unknown keys are errors.
    public struct Settings: Decodable, Sendable {
        /// The port to listen on; nil takes the next free one.
        public var port: UInt16?
        /// One-way delay of every packet, in milliseconds.
        public var latencyMs = 1

        enum CodingKeys: String, CodingKey, CaseIterable {
            case port
            case latencyMs = "latency_ms"
        }

        public init(port: UInt16? = nil, latencyMs: Int = 1) {
            self.port = port
            self.latencyMs = latencyMs
        }

        public init(from decoder: any Decoder) throws {
            self.init()
            let container = try decoder.settingsContainer(keyedBy: CodingKeys.self)
            port = try container.decodeIfPresent(UInt16.self, forKey: .port)
            latencyMs = try container.decodeIfPresent(Int.self, forKey: .latencyMs) ?? latencyMs
        }
    }

    /// The factory `TransportRegistry.register(LoopbackTransport.self)` installs: a listener on the
    /// process-wide switch.
    public static func makeListener(settings: Settings, context: TransportContext) throws -> any EdgeListener {
        try makeListener(settings: settings, context: context, on: .shared)
    }

    /// A listener on `medium`: tests give each test its own switch.
    public static func makeListener(settings: Settings, context: TransportContext,
                                    on medium: LoopbackSwitch) throws -> LoopbackEdgeListener {
        guard (0...60_000).contains(settings.latencyMs) else {
            throw PluginError.badSettings(plugin: scheme, reason: "latency_ms must be 0...60000, not \(settings.latencyMs)")
        }
        return try LoopbackEdgeListener(medium: medium, port: settings.port, scheduler: context.scheduler,
                                        latency: .milliseconds(settings.latencyMs))
    }
}
