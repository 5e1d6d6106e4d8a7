import NIOCore

/// The node's own packets it could not route yet because its place in the ring is still forming: it seems
/// nearest to the destination only because its links to the nodes around it are not all up. Answering
/// "unreachable" there tells an application a member is gone that is not (`ping` even stops sending after one
/// such error); so they wait here a few seconds and go out again whenever a connection comes up, as a
/// WireGuard peer's packets wait for its handshake. Bounded in packets and bytes; what waits too long fails as
/// before. I/O-free: the node asks and acts.
public struct HeldPackets {
    public struct Settings: Sendable, Equatable {
        /// How long a packet may wait for a route.
        public var holdFor: Duration = .seconds(5)
        /// For how long after joining the ring a node still counts as forming.
        public var formingFor: Duration = .seconds(10)
        public var maxPackets = 128
        public var maxBytes = 256 * 1024

        public init() {}
    }

    public let settings: Settings
    private var waiting: [(packet: RoutedPacket, since: Timestamp)] = []
    private var bytes = 0

    public init(settings: Settings = Settings()) {
        self.settings = settings
    }

    public var isEmpty: Bool { waiting.isEmpty }
    public var count: Int { waiting.count }

    /// Whether a node that joined its ring at `joinedAt` (nil: not yet) still holds packets it cannot route.
    public func isForming(joinedAt: Timestamp?, now: Timestamp) -> Bool {
        guard let joinedAt else { return true }
        return now - joinedAt < settings.formingFor
    }

    /// Holds `packet` (first refused at `since`); false when full, and then it fails at once.
    public mutating func hold(_ packet: RoutedPacket, since: Timestamp) -> Bool {
        let size = packet.payload.readableBytes
        guard waiting.count < settings.maxPackets, bytes + size <= settings.maxBytes else { return false }
        // Its own copy: a slice would keep the whole buffer it was read into (a udp read's is 512 KiB).
        var packet = packet
        packet.payload = ByteBuffer(buffer: packet.payload)
        waiting.append((packet, since))
        bytes += size
        return true
    }

    /// Every packet still within its time, oldest first, taken out (to be routed again), and those past it.
    public mutating func takeAll(now: Timestamp) -> (retry: [(packet: RoutedPacket, since: Timestamp)], expired: [RoutedPacket]) {
        let all = waiting
        waiting.removeAll(keepingCapacity: true)
        bytes = 0
        var retry: [(packet: RoutedPacket, since: Timestamp)] = []
        var expired: [RoutedPacket] = []
        for entry in all {
            if now - entry.since >= settings.holdFor { expired.append(entry.packet) } else { retry.append(entry) }
        }
        return (retry, expired)
    }

    /// When the oldest packet's time runs out.
    public var nextDeadline: Timestamp? {
        waiting.first.map { $0.since + settings.holdFor }
    }

    public mutating func removeAll() {
        waiting.removeAll()
        bytes = 0
    }
}
