/// A reason a node or transport drops a packet. Its `description` is the counter's name users see (`wow
/// status`, the metrics' `wow_drops_total{reason=...}`, JSON reports), so a reason's name never changes.
///
/// A closed set of reasons (a `CaseIterable` enum) also gives each case a `slot`, its position in `allCases`:
/// the counter then keeps a fixed array instead of hashing a name per drop, and lists every reason, zeros
/// included. Reasons that carry values (the node's) keep the default `slot` of nil and are counted by name.
public protocol DropCounterReason: CustomStringConvertible, Sendable {
    /// Every reason in slot order, for a closed set; empty (the default) for reasons counted by name.
    static var slotted: [Self] { get }
    /// This reason's position in `slotted` (a `switch`, so that counting neither searches nor allocates); nil
    /// (the default) for reasons counted by name.
    var slot: Int? { get }
}

extension DropCounterReason {
    public static var slotted: [Self] { [] }
    public var slot: Int? { nil }
}

extension DropCounterReason where Self: CaseIterable {
    public static var slotted: [Self] { Array(allCases) }
}

extension DropCounterReason where Self: RawRepresentable, RawValue == String {
    /// The raw value: the counter's name.
    public var description: String { rawValue }
}

/// Dropped packets by reason: the one counter shape of the node (`NodeStats.drops`) and of every transport.
///
/// A value type, used on its owner's executor. Counting allocates nothing for slotted reasons (an array
/// index); a reason counted by name costs what its `description` and a dictionary update cost.
public struct DropCounter<Reason: DropCounterReason>: Sendable {
    // Inlinable counting: specialized in the counting module, a slotted reason is an array increment.
    @usableFromInline var slots: [Int]
    @usableFromInline var named: [String: Int] = [:]

    public init() {
        slots = [Int](repeating: 0, count: Reason.slotted.count)
    }

    /// Counts one packet dropped for `reason`.
    @inlinable public mutating func count(_ reason: Reason) {
        if let slot = reason.slot {
            slots[slot] += 1
        } else {
            named[reason.description, default: 0] += 1
        }
    }

    /// Packets dropped so far for `reason`.
    public func count(of reason: Reason) -> Int {
        if let slot = reason.slot { return slots[slot] }
        return named[reason.description] ?? 0
    }

    /// Packets dropped so far, for any reason.
    public var total: Int { slots.reduce(0, +) + named.values.reduce(0, +) }

    /// Counts by reason name: every slotted reason (zeros included), and the named ones counted so far.
    public var byName: [String: Int] {
        var result = named
        for (slot, reason) in Reason.slotted.enumerated() { result[reason.description, default: 0] += slots[slot] }
        return result
    }

    /// This counter plus `other`'s counts (a listener adding the drops of a part that counts its own).
    public func adding(_ other: DropCounter) -> DropCounter {
        var sum = self
        for index in sum.slots.indices { sum.slots[index] += other.slots[index] }
        sum.named.merge(other.named, uniquingKeysWith: +)
        return sum
    }
}
