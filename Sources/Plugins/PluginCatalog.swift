import WOWKit

/// The link strategies that ship with WOW, for registering in one call.
public enum PluginCatalog {
    /// Registers `leaf`, `structured.near`, `structured.far` and `structured.shortcut`.
    public static func registerOverlords(in registry: inout OverlordRegistry) {
        registry.register(LeafOverlord.self)
        registry.register(NearOverlord.self)
        registry.register(FarOverlord.self)
        registry.register(ShortcutOverlord.self)
    }
}
