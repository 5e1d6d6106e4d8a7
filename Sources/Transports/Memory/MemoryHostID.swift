/// A host on a `MemoryNetwork`: the `<host>` in `memory://<host>:<port>`.
///
/// Hosts are numbered 1, 2, ... in the order `MemoryNetwork.addHost` creates them. The public side of a
/// NATed host's NAT has an id of its own, from a separate numbering starting at
/// `MemoryNetwork.firstNATHostID`; it has no listeners.
public struct MemoryHostID: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible {
    public let rawValue: Int

    public init(rawValue: Int) { self.rawValue = rawValue }

    public static func < (lhs: MemoryHostID, rhs: MemoryHostID) -> Bool { lhs.rawValue < rhs.rawValue }

    public var description: String { String(rawValue) }
}
