import NIOCore
import WOWKit

/// The sending half of forward error correction on one udp edge (`FECPacket`): numbers the data datagrams,
/// and while `groupSize` is set, XORs every `groupSize` of them into a parity datagram, so that the receiver
/// can put back any ONE of a group's datagrams that the path lost (`FECDecoder`). A state machine without
/// I/O: the listener writes each datagram through `writeData` into its send buffer and, when `isGroupFull`
/// says so or at the end of its event-loop tick, the group's parity through `writeParity`.
///
/// Why parity, and not retransmission: a lost datagram of a tunnelled TCP stream makes the TCP inside back
/// off; parity puts it back within microseconds (a group leaves in one GSO write), at any round-trip time,
/// for the price of one datagram per group. The group size follows the loss the receiver reports
/// (`FECPolicy`); on a clean path no parity is sent, only the 9-byte headers.
struct FECEncoder {
    /// The largest body of a data datagram: a datagram stays within `UDPTransport.maximumDatagramSize`.
    static let maximumBodySize = UDPTransport.maximumDatagramSize - FECPacket.dataHeaderSize
    /// The largest unit (body length and body) the parity covers.
    static let maximumUnitSize = 2 + maximumBodySize

    /// Data datagrams per parity group from the next group on: 2...`FECPacket.maximumGroupSize`, or 0 for
    /// none (the datagrams still carry their sequence, for the receiver's loss count).
    var groupSize = 0 {
        didSet { groupSize = groupSize < 2 ? 0 : min(groupSize, FECPacket.maximumGroupSize) }
    }

    /// The next data datagram's sequence: from a random start, so that a restarted sender's groups are not
    /// taken for its earlier ones.
    private(set) var nextSequence = UInt32.random(in: .min ... .max)
    private var groupStart: UInt32 = 0
    /// Data datagrams in the open group; 0 when none is open.
    private(set) var groupCount = 0
    /// The group size the open group was started with.
    private var openGroupSize = 0
    /// The XOR of the open group's units; bytes past `parityLength` are zero. Allocated with the first group.
    private var parity: [UInt8] = []
    private var parityLength = 0

    /// Whether a group is open (its parity is owed).
    var hasOpenGroup: Bool { groupCount > 0 }
    /// Whether the open group has all its datagrams: its parity goes now.
    var isGroupFull: Bool { groupCount > 0 && groupCount >= openGroupSize }
    /// The size of the open group's parity datagram: that of its longest data datagram.
    var paritySize: Int { FECPacket.parityHeaderSize + parityLength }

    /// Writes a data datagram into `buffer`: the header, then the body that `body` writes (at most
    /// `maximumBodySize` bytes), and adds it to the open group's parity (opening a group if `groupSize` is set).
    mutating func writeData(into buffer: inout ByteBuffer, body: (inout ByteBuffer) -> Void) {
        if groupCount == 0 {
            groupStart = nextSequence
            openGroupSize = groupSize
        }
        let header = FECPacket.DataHeader(sequence: nextSequence, index: UInt8(truncatingIfNeeded: groupCount),
                                          groupSize: UInt8(truncatingIfNeeded: openGroupSize))
        header.write(into: &buffer)
        let bodyStart = buffer.writerIndex
        body(&buffer)
        nextSequence &+= 1
        guard openGroupSize > 0 else { return }
        let length = buffer.writerIndex - bodyStart
        if parity.isEmpty { parity = [UInt8](repeating: 0, count: FECEncoder.maximumUnitSize) }
        parity.withUnsafeMutableBytes { unit in
            unit[0] ^= UInt8(truncatingIfNeeded: length >> 8)
            unit[1] ^= UInt8(truncatingIfNeeded: length)
            buffer.withUnsafeReadableBytes { written in
                let start = bodyStart - buffer.readerIndex
                FECEncoder.combine(UnsafeRawBufferPointer(rebasing: written[start..<(start + length)]),
                                   into: UnsafeMutableRawBufferPointer(rebasing: unit[2...]))
            }
        }
        parityLength = max(parityLength, 2 + length)
        groupCount += 1
    }

    /// Writes the open group's parity datagram into `buffer` (`paritySize` bytes) and closes the group.
    mutating func writeParity(into buffer: inout ByteBuffer) {
        guard groupCount > 0 else { return }
        FECPacket.ParityHeader(groupStart: groupStart, count: UInt8(groupCount)).write(into: &buffer)
        parity.withUnsafeMutableBytes { unit in
            let used = UnsafeMutableRawBufferPointer(rebasing: unit[0..<parityLength])
            buffer.writeBytes(UnsafeRawBufferPointer(used))
            used.initializeMemory(as: UInt8.self, repeating: 0)
        }
        groupCount = 0
        parityLength = 0
    }

    /// `target[i] ^= source[i]` for every byte of `source` (`target` at least as long), eight bytes at a time.
    static func combine(_ source: UnsafeRawBufferPointer, into target: UnsafeMutableRawBufferPointer) {
        let count = source.count
        precondition(count <= target.count, "parity shorter than the datagram")
        var offset = 0
        while offset + 8 <= count {
            let word = source.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
                ^ target.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
            target.storeBytes(of: word, toByteOffset: offset, as: UInt64.self)
            offset += 8
        }
        while offset < count {
            target[offset] ^= source[offset]
            offset += 1
        }
    }
}
