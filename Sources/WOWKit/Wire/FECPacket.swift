import NIOCore

/// The forward-error-correction datagrams of datagram transports (docs/protocol.md, "Parity"): every datagram
/// the `udp` transport sends is one of them, so that a receiver can count what the path loses and put a lost
/// datagram back together from the others of its group and their parity.
///
/// - Data, kind 0x0A: `version kind sequence:u32 index:u8 group_size:u8 reserved:u8` (9 bytes), then the body
///   (a packet, or a fragment). `sequence` counts the sender's data datagrams to that remote (from a random
///   start); `index` is the datagram's place in its parity group, whose first datagram has sequence
///   `sequence − index`; `group_size` is the size the sender meant the group to have, 0 when no parity follows.
/// - Parity, kind 0x0B: `version kind group_start:u32 count:u8` (7 bytes), then the XOR of the group's `count`
///   units, where a datagram's unit is `length:u16` (its body's) followed by its body, zero-padded to the
///   longest. A group's parity is as long as its longest data datagram, so that both leave in one GSO write.
/// - Loss report, kind 0x0C: `version kind received:u32 highest:u32` (10 bytes): how many data datagrams the
///   reporter received from the remote so far, and the highest sequence among them; the remote's sender
///   reads its path's loss from two reports and chooses its group size.
///
/// Like fragments and punch packets they are not `EdgeMessage`s: the node never sees one.
public enum FECPacket {
    /// The kind bytes, reserved in the edge-message kind table.
    public static let dataKind: UInt8 = 0x0A
    public static let parityKind: UInt8 = 0x0B
    public static let lossReportKind: UInt8 = 0x0C

    /// Bytes before the body of a data datagram.
    public static let dataHeaderSize = 9
    /// Bytes before the XOR of the units in a parity datagram: with the unit's 2-byte length, a parity is as
    /// long as the longest data datagram of its group.
    public static let parityHeaderSize = 7
    /// Bytes of a loss report.
    public static let lossReportSize = 10
    /// The most data datagrams in one parity group (a receiver keeps a 64-bit mask per group).
    public static let maximumGroupSize = 32

    /// The kind of `datagram` if it starts with `version` and one of the three kinds above; reads without
    /// consuming.
    @inlinable
    public static func kind(of datagram: ByteBuffer) -> UInt8? {
        guard let bytes = datagram.getInteger(at: datagram.readerIndex, endianness: .big, as: UInt16.self),
              bytes >> 8 == UInt16(WireFormat.version) else { return nil }
        let kind = UInt8(truncatingIfNeeded: bytes)
        return kind >= dataKind && kind <= lossReportKind ? kind : nil
    }

    /// A data datagram's header.
    public struct DataHeader: Equatable, Sendable {
        public var sequence: UInt32
        public var index: UInt8
        public var groupSize: UInt8

        public init(sequence: UInt32, index: UInt8, groupSize: UInt8) {
            self.sequence = sequence
            self.index = index
            self.groupSize = groupSize
        }

        /// The header of a data datagram (kind already matched), or nil when it is shorter than the header.
        /// Every datagram's header: read in one access (separate reads each pay ByteBuffer's checks).
        @inlinable
        public init?(of datagram: ByteBuffer) {
            guard datagram.readableBytes >= FECPacket.dataHeaderSize else { return nil }
            self = datagram.withUnsafeReadableBytes { raw in
                DataHeader(sequence: UInt32(bigEndian: raw.loadUnaligned(fromByteOffset: 2, as: UInt32.self)),
                           index: raw[6], groupSize: raw[7])
            }
        }

        /// The sequence of the first datagram of its group.
        @inlinable
        public var groupStart: UInt32 { sequence &- UInt32(index) }

        /// Writes the header in one access (it leads every datagram).
        public func write(into buffer: inout ByteBuffer) {
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: FECPacket.dataHeaderSize) { raw in
                raw[0] = WireFormat.version
                raw[1] = FECPacket.dataKind
                raw.storeBytes(of: sequence.bigEndian, toByteOffset: 2, as: UInt32.self)
                raw[6] = index
                raw[7] = groupSize
                raw[8] = 0
                return FECPacket.dataHeaderSize
            }
        }
    }

    /// A parity datagram's header.
    public struct ParityHeader: Equatable, Sendable {
        public var groupStart: UInt32
        public var count: UInt8

        public init(groupStart: UInt32, count: UInt8) {
            self.groupStart = groupStart
            self.count = count
        }

        /// The header of a parity datagram (kind already matched), or nil when it is shorter than the header.
        @inlinable
        public init?(of datagram: ByteBuffer) {
            let at = datagram.readerIndex
            guard datagram.readableBytes >= FECPacket.parityHeaderSize,
                  let start = datagram.getInteger(at: at + 2, endianness: .big, as: UInt32.self),
                  let count = datagram.getInteger(at: at + 6, as: UInt8.self) else { return nil }
            self.init(groupStart: start, count: count)
        }

        public func write(into buffer: inout ByteBuffer) {
            buffer.writeInteger(WireFormat.version)
            buffer.writeInteger(FECPacket.parityKind)
            buffer.writeInteger(groupStart, endianness: .big)
            buffer.writeInteger(count)
        }
    }

    /// A loss report.
    public struct LossReport: Equatable, Sendable {
        /// Data datagrams received from the remote so far (wrapping).
        public var received: UInt32
        /// The highest sequence among them.
        public var highest: UInt32

        public init(received: UInt32, highest: UInt32) {
            self.received = received
            self.highest = highest
        }

        /// The report in `datagram` (kind already matched), or nil when it is not exactly 10 bytes long.
        public init?(of datagram: ByteBuffer) {
            let at = datagram.readerIndex
            guard datagram.readableBytes == FECPacket.lossReportSize,
                  let received = datagram.getInteger(at: at + 2, endianness: .big, as: UInt32.self),
                  let highest = datagram.getInteger(at: at + 6, endianness: .big, as: UInt32.self) else { return nil }
            self.init(received: received, highest: highest)
        }

        public func write(into buffer: inout ByteBuffer) {
            buffer.writeInteger(WireFormat.version)
            buffer.writeInteger(FECPacket.lossReportKind)
            buffer.writeInteger(received, endianness: .big)
            buffer.writeInteger(highest, endianness: .big)
        }
    }
}
