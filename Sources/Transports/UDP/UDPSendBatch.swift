import NIOCore
import WOWKit

/// Datagrams to one remote gathered back to back so that they leave in ONE write with UDP GSO (the kernel
/// cuts it into datagrams of `segmentSize` bytes): a TCP super-segment cut into segments by the virtual
/// interface becomes ~50 sealed packets of one size for one peer, sent in one or two system calls instead of
/// ~50 passes through the socket layer.
///
/// As GSO needs: every datagram but the last exactly `segmentSize` bytes, the last no longer; at most
/// `maximumSegments` datagrams (fewer when the caller says so: 1 without GSO) and `maximumBytes` in all.
/// Each datagram is written in place by its caller (the udp transport's header, then the body), into one
/// buffer of a small ring that is reused, so that no allocation is made per datagram once the socket has
/// written the ones before (a buffer still queued in the channel is left to it, and writing into it would
/// allocate a new one: copy on write).
///
/// Confined to the listener's event loop, like the listener.
struct UDPSendBatch {
    /// Datagrams per GSO write: Linux takes up to 64 (`UDP_MAX_SEGMENTS` before 6.x; 128 since).
    static let maximumSegments = 64
    /// The largest UDP payload of one write over IPv4 (65,535 − 20 − 8).
    static let maximumBytes = 65_507
    /// Buffers in the ring: more than the batches one event-loop tick usually sends before its flush.
    static let ringSize = 16

    private(set) var remote: SocketAddress?
    private var buffer = ByteBuffer()
    private(set) var count = 0
    private(set) var segmentSize = 0
    /// A datagram shorter than the first ended the batch.
    private var isClosed = false
    private var ring: [ByteBuffer] = Array(repeating: ByteBuffer(), count: UDPSendBatch.ringSize)
    private var nextInRing = 0

    var isEmpty: Bool { count == 0 }

    /// Adds a datagram of `size` bytes for `remote`, written by `write` at the batch's end, when it can join
    /// the batch (same remote, not longer than the first, room left, fewer than `segmentLimit` already);
    /// false otherwise, and nothing changes (`write` is not called).
    mutating func add(size: Int, to remote: SocketAddress, segmentLimit: Int = UDPSendBatch.maximumSegments,
                      write: (inout ByteBuffer) -> Void) -> Bool {
        if count == 0 {
            buffer = ring[nextInRing]
            ring[nextInRing] = ByteBuffer()  // our copy of it is `buffer` now: kept unique while we fill it
            buffer.clear()
            if buffer.capacity < UDPSendBatch.maximumBytes { buffer.reserveCapacity(UDPSendBatch.maximumBytes) }
            self.remote = remote
            segmentSize = size
            isClosed = false
        } else {
            guard !isClosed, size <= segmentSize, size > 0, count < min(segmentLimit, UDPSendBatch.maximumSegments),
                  buffer.readableBytes + size <= UDPSendBatch.maximumBytes, remote == self.remote else { return false }
            if size < segmentSize { isClosed = true }
        }
        let end = buffer.writerIndex + size
        write(&buffer)
        assert(buffer.writerIndex == end, "the datagram's writer wrote another size than it said")
        count += 1
        return true
    }

    /// What to write for the batch, and empties it: the bytes, and the GSO segment size when it holds more
    /// than one datagram; nil when empty.
    mutating func take() -> (remote: SocketAddress, data: ByteBuffer, segmentSize: Int?)? {
        guard count > 0, let remote else { return nil }
        let segments = count
        count = 0
        self.remote = nil
        // The ring keeps the buffer for the next batch in its place; the channel holds it until written.
        ring[nextInRing] = buffer
        nextInRing = (nextInRing + 1) % UDPSendBatch.ringSize
        let data = buffer
        buffer = ByteBuffer()
        return (remote, data, segments > 1 ? segmentSize : nil)
    }
}
