import WOWKit

/// The link strategies that ship with WOW, for registering in one call, and the ones a node runs by default.
public enum PluginCatalog {
    /// The overlords a node runs when its config has no `overlords` section: Brunet's usual set (`leaf`,
    /// `structured.near`, `structured.far`, `structured.shortcut`). `wow` hands them to the config parser
    /// (`NodeConfig(yaml:defaultOverlords:)`); the core names none.
    public static let defaultOverlordNames = [LeafOverlord.name, NearOverlord.name, FarOverlord.name, ShortcutOverlord.name]

    /// `defaultOverlordNames` as config entries, each with default settings.
    public static var defaultOverlords: [NodeConfig.PluginEntry] { defaultOverlordNames.map { .init(name: $0) } }

    /// Registers `leaf`, `structured.near`, `structured.far` and `structured.shortcut`.
    public static func registerOverlords(in registry: inout OverlordRegistry) {
        registry.register(LeafOverlord.self)
        registry.register(NearOverlord.self)
        registry.register(FarOverlord.self)
        registry.register(ShortcutOverlord.self)
    }
}
