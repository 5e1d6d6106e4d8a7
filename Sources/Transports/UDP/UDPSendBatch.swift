import NIOCore
import WOWKit

/// Datagrams to one remote gathered back to back so that they leave in ONE write with UDP GSO (the kernel
/// cuts it into datagrams of `segmentSize` bytes): a TCP super-segment cut into segments by the virtual
/// interface becomes ~50 sealed packets of one size for one peer, sent in one or two system calls instead of
/// ~50 passes through the socket layer.
///
/// As GSO needs: every datagram but the last exactly `segmentSize` bytes, the last no longer; at most
/// `maximumSegments` datagrams and `maximumBytes` in all. A lone datagram is not copied: it is kept as it
/// came and written as it is if nothing joins it. From the second on they are copied into one buffer of a
/// small ring that is reused, so that no allocation is made per batch once the socket has written the ones
/// before (a buffer still queued in the channel is left to it, and copying into it would allocate a new one:
/// copy on write).
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
    private var first = ByteBuffer()
    private var buffer = ByteBuffer()
    private(set) var count = 0
    private(set) var segmentSize = 0
    private var byteCount = 0
    /// A datagram shorter than the first ended the batch.
    private var isClosed = false
    private var ring: [ByteBuffer] = Array(repeating: ByteBuffer(), count: UDPSendBatch.ringSize)
    private var nextInRing = 0

    var isEmpty: Bool { count == 0 }

    /// Adds `datagram` for `remote` when it can join the batch (same remote, not longer than the first, room
    /// left); false otherwise, and nothing changes.
    mutating func add(_ datagram: ByteBuffer, to remote: SocketAddress) -> Bool {
        let size = datagram.readableBytes
        guard count > 0 else {
            start(datagram, to: remote)
            return true
        }
        guard !isClosed, size <= segmentSize, size > 0, count < UDPSendBatch.maximumSegments,
              byteCount + size <= UDPSendBatch.maximumBytes, remote == self.remote else { return false }
        if count == 1 {
            buffer = ring[nextInRing]
            ring[nextInRing] = ByteBuffer()  // our copy of it is `buffer` now: kept unique while we fill it
            buffer.clear()
            if buffer.capacity < UDPSendBatch.maximumBytes { buffer.reserveCapacity(UDPSendBatch.maximumBytes) }
            buffer.writeImmutableBuffer(first)
            first = ByteBuffer()
        }
        buffer.writeImmutableBuffer(datagram)
        count += 1
        byteCount += size
        if size < segmentSize { isClosed = true }
        return true
    }

    /// Starts a new batch with `datagram` (the batch must be empty: `take` what it held first).
    private mutating func start(_ datagram: ByteBuffer, to remote: SocketAddress) {
        first = datagram
        self.remote = remote
        count = 1
        segmentSize = datagram.readableBytes
        byteCount = segmentSize
        isClosed = false
    }

    /// What to write for the batch, and empties it: the bytes, and the GSO segment size when it holds more
    /// than one datagram; nil when empty.
    mutating func take() -> (remote: SocketAddress, data: ByteBuffer, segmentSize: Int?)? {
        guard count > 0, let remote else { return nil }
        defer {
            count = 0
            self.remote = nil
        }
        guard count > 1 else {
            let datagram = first
            first = ByteBuffer()
            return (remote, datagram, nil)
        }
        // The ring keeps the buffer for the next batch in its place; the channel holds it until written.
        ring[nextInRing] = buffer
        nextInRing = (nextInRing + 1) % UDPSendBatch.ringSize
        let data = buffer
        buffer = ByteBuffer()
        return (remote, data, segmentSize)
    }
}
