import NIOCore
import WOWKit

/// The receiving half of forward error correction on one udp edge (`FECPacket`, made by `FECEncoder`): counts
/// the data datagrams that arrive (for the loss reports the remote's sender chooses its group size from), and
/// puts a group's one missing datagram back together from the others and the group's parity. A state machine
/// without I/O: the listener hands it each data and parity datagram and gets back a recovered body, if any,
/// which it then handles as if that datagram had arrived.
///
/// - Per group, it keeps the XOR of the units received so far (data and parity alike): once the parity and
///   all but one of the group's data datagrams are in, in any order, that XOR is the missing unit. Nothing
///   is copied per datagram: one pass of XOR.
/// - Bounded: `slotCount` groups at a time (a new one takes the oldest's place), one unit's bytes each, made
///   on the first group that carries parity. A group without parity (`group_size` 0) costs nothing.
/// - A duplicate is not counted twice in a group; a datagram of a settled group (recovered or complete) is
///   ignored; a unit whose length does not fit is not recovered. A forged parity can only make a wrong
///   body, which the layer above refuses like any forged datagram (a secured node's channel
///   authenticates every frame).
struct FECDecoder {
    /// Groups in progress at a time: enough for the datagrams a reordering path mixes.
    static let slotCount = 8

    private struct Group {
        var start: UInt32 = 0
        /// Bit `i`: data datagram `i` is in.
        var received: UInt64 = 0
        /// Data datagrams in the group, from its parity; 0 until the parity came.
        var count = 0
        var isInUse = false
        /// Recovered, or found complete: nothing more to do.
        var isSettled = false
    }

    private var groups = [Group](repeating: Group(), count: FECDecoder.slotCount)
    /// The XOR of each slot's units, `FECEncoder.maximumUnitSize` bytes per slot; made with the first group.
    private var units: [UInt8] = []
    private var nextSlot = 0

    /// Data datagrams received (wrapping; duplicates count), and the highest sequence among them.
    private(set) var received: UInt32 = 0
    private(set) var highest: UInt32 = 0
    private var hasReceived = false
    /// Data datagrams received since the last loss report, and when that was.
    private var receivedSinceReport = 0
    private var lastReport: NIODeadline?
    /// Datagrams put back together.
    private(set) var recovered = 0

    /// A loss report is due after this many data datagrams, at least `reportInterval` after the last one, or
    /// after `sparseReportInterval` for a sparse stream of at least `minimumReportCount`.
    static let reportCount = 64
    static let reportInterval = TimeAmount.milliseconds(100)
    static let sparseReportInterval = TimeAmount.seconds(1)
    static let minimumReportCount = 4

    /// Takes a data datagram's header and body; returns the body of a datagram of its group that was missing
    /// and can now be put back, if any.
    mutating func receiveData(_ header: FECPacket.DataHeader, body: ByteBuffer,
                              allocator: ByteBufferAllocator) -> ByteBuffer? {
        received &+= 1
        receivedSinceReport += 1
        if !hasReceived || Int32(bitPattern: header.sequence &- highest) > 0 {
            highest = header.sequence
            hasReceived = true
        }
        let index = Int(header.index)
        guard header.groupSize >= 2, index < FECPacket.maximumGroupSize,
              body.readableBytes <= FECEncoder.maximumBodySize else { return nil }
        let slot = slot(for: header.groupStart)
        let bit = UInt64(1) << UInt64(index)
        guard !groups[slot].isSettled, groups[slot].received & bit == 0 else { return nil }
        groups[slot].received |= bit
        let length = body.readableBytes
        withUnit(of: slot) { unit in
            unit[0] ^= UInt8(truncatingIfNeeded: length >> 8)
            unit[1] ^= UInt8(truncatingIfNeeded: length)
            body.withUnsafeReadableBytes { FECEncoder.combine($0, into: UnsafeMutableRawBufferPointer(rebasing: unit[2...])) }
        }
        return recover(slot, allocator: allocator)
    }

    /// Takes a parity datagram's header and units (the bytes after its header); returns the body of the
    /// group's one missing datagram when it can now be put back.
    mutating func receiveParity(_ header: FECPacket.ParityHeader, units payload: ByteBuffer,
                                allocator: ByteBufferAllocator) -> ByteBuffer? {
        let count = Int(header.count)
        guard count >= 1, count <= FECPacket.maximumGroupSize, payload.readableBytes >= 2,
              payload.readableBytes <= FECEncoder.maximumUnitSize else { return nil }
        let slot = slot(for: header.groupStart)
        guard !groups[slot].isSettled, groups[slot].count == 0 else { return nil }
        groups[slot].count = count
        withUnit(of: slot) { unit in
            payload.withUnsafeReadableBytes { FECEncoder.combine($0, into: unit) }
        }
        return recover(slot, allocator: allocator)
    }

    /// The report to send now, if one is due at `now`; counting starts over.
    mutating func takeReport(now: NIODeadline) -> FECPacket.LossReport? {
        guard receivedSinceReport >= FECDecoder.minimumReportCount else { return nil }
        if let lastReport {
            let since = now - lastReport
            guard since >= FECDecoder.sparseReportInterval
                    || (receivedSinceReport >= FECDecoder.reportCount && since >= FECDecoder.reportInterval)
            else { return nil }
        }
        lastReport = now
        receivedSinceReport = 0
        return FECPacket.LossReport(received: received, highest: highest)
    }

    /// Whether a report may be due: cheap, so that the clock is read only then.
    var mayReport: Bool { receivedSinceReport >= FECDecoder.minimumReportCount && receivedSinceReport % 4 == 0 }

    // MARK: Internals

    /// The slot of the group starting at `start`: its own, or the oldest's, emptied.
    private mutating func slot(for start: UInt32) -> Int {
        for slot in groups.indices where groups[slot].isInUse && groups[slot].start == start { return slot }
        let slot = nextSlot
        nextSlot = (nextSlot + 1) % FECDecoder.slotCount
        groups[slot] = Group(start: start, isInUse: true)
        if units.isEmpty {
            units = [UInt8](repeating: 0, count: FECDecoder.slotCount * FECEncoder.maximumUnitSize)
        } else {
            withUnit(of: slot) { $0.initializeMemory(as: UInt8.self, repeating: 0) }
        }
        return slot
    }

    private mutating func withUnit(of slot: Int, _ body: (UnsafeMutableRawBufferPointer) -> Void) {
        let size = FECEncoder.maximumUnitSize
        units.withUnsafeMutableBytes { all in
            body(UnsafeMutableRawBufferPointer(rebasing: all[(slot * size)..<((slot + 1) * size)]))
        }
    }

    /// The missing body of the group in `slot` when its parity and all its data datagrams but one are in.
    private mutating func recover(_ slot: Int, allocator: ByteBufferAllocator) -> ByteBuffer? {
        let group = groups[slot]
        guard group.count > 0 else { return nil }
        let all: UInt64 = (1 << UInt64(group.count)) - 1
        let missing = all & ~group.received
        guard missing.nonzeroBitCount <= 1 else { return nil }
        groups[slot].isSettled = true
        guard missing != 0 else { return nil }
        var body: ByteBuffer?
        withUnit(of: slot) { unit in
            let length = Int(unit[0]) << 8 | Int(unit[1])
            guard length <= FECEncoder.maximumBodySize else { return }
            var buffer = allocator.buffer(capacity: length)
            buffer.writeBytes(UnsafeRawBufferPointer(rebasing: unit[2..<(2 + length)]))
            body = buffer
        }
        if body != nil { recovered += 1 }
        return body
    }
}
