/// What a connection is for, named by the overlord that wanted it (`leaf`, `structured.near`, ...).
///
/// An open set: plugins bring their own. The name is lowercase ASCII letters, digits, `.`, `_` or `-`,
/// 1 to 64 bytes, so that it can travel in link requests and CTMs.
public struct ConnectionType: Hashable, Comparable, Sendable, CustomStringConvertible, ExpressibleByStringLiteral {
    public static let maximumLength = 64
    public let name: String

    /// Nil when `name` is empty, too long, or has characters outside the allowed set.
    public init?(validating name: String) {
        guard ConnectionType.isValid(name) else { return nil }
        self.name = name
    }

    /// For names written in code; an invalid literal is a programming error caught by `isValid` in tests.
    public init(stringLiteral name: String) {
        precondition(ConnectionType.isValid(name), "invalid connection type literal '\(name)'")
        self.name = name
    }

    public static func isValid(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        return !bytes.isEmpty && bytes.count <= maximumLength && bytes.allSatisfy(isNameByte)
    }

    private static func isNameByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"): return true
        case UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"): return true
        default: return false
        }
    }

    /// Leaf connections (to bootstrap nodes) carry a node until it is in the ring; the router never picks
    /// them as a next hop except to deliver to the leaf itself. The core knows this one name because routing
    /// depends on it; every other type is a plugin's.
    public static let leaf: ConnectionType = "leaf"
    /// A direct connection a node keeps because its relayed (tunnelled) connections need direct peers to
    /// start from; the node itself adds and removes it.
    public static let forwarder: ConnectionType = "forwarder"

    public static func < (lhs: ConnectionType, rhs: ConnectionType) -> Bool { lhs.name < rhs.name }
    public var description: String { name }
}
