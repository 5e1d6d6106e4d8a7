import NIOCore

/// How many TCP segments of a super-segment travel in one overlay packet, per destination, from what the
/// host's TCP itself reveals about the path: its retransmissions.
///
/// One segment per packet makes a lost underlay datagram cost one segment, but every segment then pays the
/// overlay's whole per-packet cost (route, encode, seal, open: ~3x the CPU per byte of whole super-segments,
/// BENCHMARKS.md); a whole 64 KB super-segment per packet (45 datagrams) costs a 45th of that, and is lost
/// with any one of its datagrams. TCP copes with an occasional lost burst (one loss event, repaired by SACK
/// in a round trip), not with losing a third of everything it sends, which is what whole super-segments
/// meet at 1% datagram loss. So a path starts whole (a clean path loses nothing) and the share of the bytes
/// the host sends again decides: above `shrinkAbove` in a window of `windowBytes` (or as soon as that many
/// bytes were resent), packets carry half as many segments; below `growBelow`, twice as many (up to whole).
///
/// A retransmission is a TCP packet with data that starts before the highest sequence number its flow has
/// sent (RFC 1982 arithmetic), the overlap counting; flows are told apart by addresses and ports, paths by
/// destination (a new connection to a peer inherits what the others learned).
///
/// Pure and I/O-free; at most `flowLimit` flows and `pathLimit` destinations are tracked (a new one replaces
/// the least recently seen).
public struct SegmentationPolicy {
    /// Segments per packet when a path carries whole super-segments (more than any super-segment holds).
    public static let whole = 64
    /// The bytes over which the resent share is measured, and the thresholds.
    public static let windowBytes = 1 << 20
    public static let shrinkAbove = 0.10
    public static let growBelow = 0.02
    public static let flowLimit = 32
    public static let pathLimit = 16

    private struct Flow {
        var source = VirtualIP(0)
        var destination = VirtualIP(0)
        var ports: UInt32 = 0
        var isActive = false
        var highestSequence: UInt32 = 0
        var lastSeen = 0
    }

    private struct Path {
        var destination = VirtualIP(0)
        var isActive = false
        var segmentsPerPacket = 0
        var sentBytes = 0
        var resentBytes = 0
        var lastSeen = 0
    }

    private var flows = Array(repeating: Flow(), count: SegmentationPolicy.flowLimit)
    private var paths = Array(repeating: Path(), count: SegmentationPolicy.pathLimit)
    private var clock = 0
    /// Segments per packet on a new path.
    public let initialSegmentsPerPacket: Int
    /// Bytes the host sent again, over all flows (for tests and diagnostics).
    public private(set) var retransmittedBytes = 0

    /// Whether the size follows the path's retransmissions (else it stays where it starts: benchmarks).
    public let adapts: Bool

    /// New paths start at `initialSegmentsPerPacket` (1 to `whole`; tests and benchmarks start lower).
    public init(initialSegmentsPerPacket: Int = SegmentationPolicy.whole, adapts: Bool = true) {
        self.initialSegmentsPerPacket = min(max(1, initialSegmentsPerPacket), SegmentationPolicy.whole)
        self.adapts = adapts
    }

    /// Takes note of a TCP packet with payload the host sent (`tcp`: its headers) and
    /// returns how many segments of it go in one overlay packet (`whole`: all of them).
    public mutating func segmentsPerPacket(for tcp: TCPHeaders) -> Int {
        let ports = tcp.ports
        let sequence = tcp.sequence
        let payload = tcp.payloadLength
        let end = sequence &+ UInt32(truncatingIfNeeded: payload)
        clock &+= 1

        var flow = -1
        var oldest = 0
        for index in flows.indices {
            if flows[index].isActive, flows[index].ports == ports, flows[index].source == tcp.source,
               flows[index].destination == tcp.destination {
                flow = index
                break
            }
            if SegmentationPolicy.isOlder(flows[index].isActive, flows[index].lastSeen, than: flows[oldest].isActive,
                                          flows[oldest].lastSeen) { oldest = index }
        }
        var resent = 0
        if flow < 0 {
            flow = oldest
            flows[flow] = Flow(source: tcp.source, destination: tcp.destination, ports: ports, isActive: true,
                               highestSequence: end)
        } else {
            let behind = Int32(bitPattern: flows[flow].highestSequence &- sequence)
            if behind > 0 { resent = min(Int(behind), payload) }
            if Int32(bitPattern: end &- flows[flow].highestSequence) > 0 { flows[flow].highestSequence = end }
        }
        flows[flow].lastSeen = clock

        var path = -1
        oldest = 0
        for index in paths.indices {
            if paths[index].isActive, paths[index].destination == tcp.destination {
                path = index
                break
            }
            if SegmentationPolicy.isOlder(paths[index].isActive, paths[index].lastSeen, than: paths[oldest].isActive,
                                          paths[oldest].lastSeen) { oldest = index }
        }
        if path < 0 {
            path = oldest
            paths[path] = Path(destination: tcp.destination, isActive: true, segmentsPerPacket: initialSegmentsPerPacket)
        }
        paths[path].lastSeen = clock
        retransmittedBytes += resent
        paths[path].resentBytes += resent
        paths[path].sentBytes += payload
        let window = Double(SegmentationPolicy.windowBytes)
        if !adapts {
            paths[path].sentBytes = 0
            paths[path].resentBytes = 0
        } else if Double(paths[path].resentBytes) > SegmentationPolicy.shrinkAbove * window {
            // So much resent already: no need to wait for the window's end.
            paths[path].segmentsPerPacket = max(1, paths[path].segmentsPerPacket / 2)
            paths[path].sentBytes = 0
            paths[path].resentBytes = 0
        } else if paths[path].sentBytes >= SegmentationPolicy.windowBytes {
            let share = Double(paths[path].resentBytes) / Double(paths[path].sentBytes)
            if share > SegmentationPolicy.shrinkAbove {
                paths[path].segmentsPerPacket = max(1, paths[path].segmentsPerPacket / 2)
            } else if share < SegmentationPolicy.growBelow {
                paths[path].segmentsPerPacket = min(SegmentationPolicy.whole, paths[path].segmentsPerPacket * 2)
            }
            paths[path].sentBytes = 0
            paths[path].resentBytes = 0
        }
        return paths[path].segmentsPerPacket
    }

    /// Whether a slot (in use or not, last seen when) is a better one to replace than another: a free one
    /// first, then the least recently seen.
    private static func isOlder(_ isActive: Bool, _ lastSeen: Int, than otherActive: Bool, _ otherSeen: Int) -> Bool {
        if !isActive { return otherActive }
        return otherActive && lastSeen < otherSeen
    }
}
