/// Which message counters of a session were already accepted: a counter is accepted once, and only if it is
/// newer than the newest accepted minus `size` (so packets reordered by up to `size` still arrive, and
/// anything older or repeated is dropped). A sliding bitmap, as in RFC 6479.
struct ReplayWindow: Sendable {
    /// Counters this far behind the newest one are still accepted once.
    static let size: UInt64 = 2048
    private static let wordCount = Int(size / 64)

    private var bitmap = [UInt64](repeating: 0, count: wordCount)
    /// The newest accepted counter, or nil before the first.
    private(set) var newest: UInt64?

    enum Verdict: Equatable { case fresh, replayed, tooOld }

    /// Whether `counter` may be accepted (check before authenticating; commit after).
    func verdict(for counter: UInt64) -> Verdict {
        guard let newest, counter <= newest else { return .fresh }
        if newest - counter >= ReplayWindow.size { return .tooOld }
        return isSet(counter) ? .replayed : .fresh
    }

    /// Records an authenticated `counter` (one `verdict` called `.fresh`).
    mutating func commit(_ counter: UInt64) {
        if let newest, counter <= newest {
            set(counter)
            return
        }
        let gap = newest.map { counter - $0 } ?? ReplayWindow.size
        if gap >= ReplayWindow.size {
            for index in bitmap.indices { bitmap[index] = 0 }
        } else {
            // Forget the counters the window slides past (they reuse these bits).
            var skipped = newest! + 1
            while skipped < counter {
                clear(skipped)
                skipped += 1
            }
        }
        newest = counter
        set(counter)
    }

    private func position(_ counter: UInt64) -> (word: Int, bit: UInt64) {
        let slot = counter % ReplayWindow.size
        return (Int(slot / 64), slot % 64)
    }
    private func isSet(_ counter: UInt64) -> Bool {
        let (word, bit) = position(counter)
        return bitmap[word] & (1 << bit) != 0
    }
    private mutating func set(_ counter: UInt64) {
        let (word, bit) = position(counter)
        bitmap[word] |= 1 << bit
    }
    private mutating func clear(_ counter: UInt64) {
        let (word, bit) = position(counter)
        bitmap[word] &= ~(1 << bit)
    }
}
