import Foundation
import WOWKit

/// Chooses an edge's parity group size (`FECEncoder.groupSize`) from the loss its remote reports
/// (`FECPacket.LossReport`). A state machine without I/O.
///
/// - Loss is read from two reports: the sequences that went past (`highest` moved) against the datagrams
///   that arrived (`received` moved), summed over about the last `window` datagrams, so the figure follows a
///   path that changes. The receiver counts before it recovers anything, so parity does not hide the loss it
///   is sized for.
/// - No parity below `offBelow` loss (turned on again only at `onAbove`: a clean path pays 9 bytes per
///   datagram and nothing else). Above, the largest group (a power of two, 2...32) in which at most one
///   datagram in `targetGroupLossShare` is lost besides the one parity can put back:
///   `1 − (1 − p)^k ≤ share` (k ≈ 0.134 / p: 32 groups at 0.1% loss, 8 at 1%, 4 at 3%, 2 above ~6%).
///   What is left after parity is then about p × share.
/// - Reports that make no sense (the sequence went backwards or jumped by more than 2^24, as after the
///   remote's restart) start the count over.
struct FECPolicy {
    static let window = 20_000.0
    static let onAbove = 0.0005
    static let offBelow = 0.0002
    static let targetGroupLossShare = 0.125
    /// Datagrams counted before the first decision.
    static let minimumCount = 200.0

    private var last: FECPacket.LossReport?
    private(set) var expected = 0.0
    private(set) var lost = 0.0
    /// The chosen group size: 0 (no parity) or 2...32.
    private(set) var groupSize = 0

    /// The loss rate counted so far (0 before any count).
    var lossRate: Double { expected > 0 ? lost / expected : 0 }

    /// Takes a report; returns the group size to use from now on.
    mutating func take(_ report: FECPacket.LossReport) -> Int {
        defer { last = report }
        guard let last else { return groupSize }
        let went = Int64(Int32(bitPattern: report.highest &- last.highest))
        guard went >= 0, went < 1 << 24 else {
            expected = 0
            lost = 0
            return groupSize
        }
        let arrived = Int64(report.received &- last.received)
        expected += Double(went)
        lost += Double(max(0, went - min(arrived, went)))
        if expected > FECPolicy.window {
            let scale = FECPolicy.window / expected
            expected *= scale
            lost *= scale
        }
        guard expected >= FECPolicy.minimumCount else { return groupSize }
        groupSize = FECPolicy.groupSize(forLoss: lossRate, current: groupSize)
        return groupSize
    }

    /// The group size for loss rate `loss`, with `current` for the hysteresis around off.
    static func groupSize(forLoss loss: Double, current: Int) -> Int {
        if loss < offBelow || (current == 0 && loss < onAbove) { return 0 }
        let largest = log(1 - targetGroupLossShare) / log(1 - min(loss, 0.5))
        var size = FECPacket.maximumGroupSize
        while size > 2 && Double(size) > largest { size /= 2 }
        return size
    }
}
