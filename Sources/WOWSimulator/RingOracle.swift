import WOWKit

/// The true ring of an overlay, known from outside it: the live nodes' addresses in order. It tells each
/// node's true left and right neighbours and whether a node is connected to both, the fact a consistent ring
/// rests on. The simulator and the local overlay (real sockets) both judge their nodes by it.
///
/// A node's left neighbour is the next larger address, its right one the next smaller, both wrapping
/// around the ring, as `ConnectionTable` orders them.
public struct RingOracle: Sendable {
    /// The live nodes' addresses, sorted.
    public private(set) var members: [Address]

    /// A ring of these addresses (in any order, each once).
    public init(_ addresses: some Sequence<Address> = []) {
        members = addresses.sorted()
    }

    public var count: Int { members.count }

    /// Adds a node that joined.
    public mutating func insert(_ address: Address) {
        members.insert(address, at: index(of: address))
    }

    /// Removes a node that left; nothing when it is not a member.
    public mutating func remove(_ address: Address) {
        let index = index(of: address)
        if index < members.count && members[index] == address { members.remove(at: index) }
    }

    /// The true left and right neighbours of the member at `address`; nil in a ring of fewer than two.
    public func neighbours(of address: Address) -> (left: Address, right: Address)? {
        guard members.count >= 2 else { return nil }
        let index = index(of: address)
        return (members[(index + 1) % members.count], members[(index - 1 + members.count) % members.count])
    }

    /// Whether the member at `address`, whose connections are `table`, holds structured connections to both
    /// its true neighbours (always, in a ring of fewer than two).
    public func isRoutable(_ address: Address, table: ConnectionTable) -> Bool {
        guard let (left, right) = neighbours(of: address) else { return true }
        return table.connection(to: left)?.isStructured == true && table.connection(to: right)?.isStructured == true
    }

    /// How many of these members (each an address and its connections) lack a structured connection to a
    /// true neighbour.
    public func violations(among nodes: some Sequence<(address: Address, table: ConnectionTable)>) -> Int {
        nodes.filter { !isRoutable($0.address, table: $0.table) }.count
    }

    /// Where `address` is or would be inserted (binary search).
    private func index(of address: Address) -> Int {
        var low = 0
        var high = members.count
        while low < high {
            let mid = (low + high) / 2
            if members[mid] < address { low = mid + 1 } else { high = mid }
        }
        return low
    }
}
