import NIOCore
import WOWKit

/// Puts fragment datagrams (`FragmentPacket`, made by `UDPFragmenter`) back together into packets, per remote
/// address. A state machine without I/O: the listener feeds it each fragment with the remote and the time and
/// gets back a complete packet, nothing yet, or the reason it dropped the fragment.
///
/// - A message is the fragments of one remote with one message id. Every fragment but the last carries the
///   same number of bytes (the first such fragment sets it), the last at most that many, the whole at most
///   `WireFormat.maximumPacketSize`; fragments may come in any order.
/// - Bounded: at most `Limits.messagesPerRemote` messages in progress per remote (a new one evicts the
///   remote's oldest: `fragment_evicted`), at most `Limits.bufferedBytes` held for all of them (a message that
///   does not fit is refused: `fragment_no_room`; each is charged its fragment count × 1,444 bytes), and a
///   message not complete `Limits.timeout` after its first fragment is discarded (`fragment_timeout`).
/// - Losing one fragment loses the packet, as losing a datagram did before: the layers above (TCP inside the
///   tunnel, the link handshake's retries) send again. A fragment repeated after its message completed starts
///   a message that times out.
/// - Malformed or inconsistent fragments are dropped with a specific reason (see the `fragment_*` cases of
///   `UDPEdgeListener.DropReason`); a message in progress is never changed by one.
///
/// Drops are counted here (`drops`); timeouts and evictions count messages, the others fragments.
struct UDPFragmentReassembler {
    struct Limits {
        var messagesPerRemote = 4
        var bufferedBytes = 4 << 20
        var timeout: TimeAmount = .seconds(1)
    }

    enum Outcome: Equatable {
        /// The fragment completed a packet (or was a whole packet in one fragment).
        case complete(ByteBuffer)
        /// Kept; its message is not complete yet.
        case pending
        /// Dropped and counted for this reason.
        case dropped(UDPEdgeListener.DropReason)
    }

    private struct Message {
        let id: UInt32
        let count: Int
        let deadline: NIODeadline
        /// Piece `i` at `i × maximumPieceSize`; moved together when the pieces are shorter.
        var buffer: ByteBuffer
        /// Bit `i`: piece `i` is in (count ≤ 46 < 64).
        var received: UInt64 = 0
        /// The length of every piece but the last, once one of them arrived.
        var pieceSize: Int?
        var lastPieceSize: Int?

        /// What a message of `count` fragments holds of the byte budget.
        static func charge(count: Int) -> Int { count * UDPFragmenter.maximumPieceSize }
        var charge: Int { Message.charge(count: count) }

        var state: (count: Int, received: UInt64, pieceSize: Int?, lastPieceSize: Int?) {
            (count, received, pieceSize, lastPieceSize)
        }

        /// Puts piece `index` in place and records it.
        mutating func store(_ piece: ByteBuffer, at index: Int) {
            buffer.setBuffer(piece, at: index * UDPFragmenter.maximumPieceSize)
            received |= 1 << UInt64(index)
            if index == count - 1 { lastPieceSize = piece.readableBytes } else { pieceSize = piece.readableBytes }
        }
    }

    let limits: Limits
    /// Messages in progress by remote, oldest first; a remote with none has no entry after a sweep.
    private var messages: [SocketAddress: [Message]] = [:]
    private typealias Slot = Dictionary<SocketAddress, [Message]>.Index
    /// Bytes charged for the messages in progress.
    private(set) var bufferedBytes = 0
    private(set) var messageCount = 0
    /// The `fragment_*` drops; the listener adds them to its own.
    private(set) var drops = DropCounter<UDPEdgeListener.DropReason>()
    /// Expired messages of all remotes are looked for at most this often while fragments arrive.
    private var nextSweep = NIODeadline.uptimeNanoseconds(0)

    init(limits: Limits = Limits()) { self.limits = limits }

    /// Takes one fragment datagram (it starts with `version`, 0x09) from `remote` at `now`.
    mutating func receive(_ datagram: ByteBuffer, from remote: SocketAddress, now: NIODeadline,
                          allocator: ByteBufferAllocator) -> Outcome {
        guard let (id, index, count) = FragmentPacket.header(of: datagram) else { return drop(.fragmentTruncated) }
        var piece = datagram
        piece.moveReaderIndex(forwardBy: FragmentPacket.headerSize)
        let length = piece.readableBytes
        guard length > 0 else { return drop(.fragmentEmpty) }
        guard length <= UDPFragmenter.maximumPieceSize else { return drop(.fragmentOversized) }
        guard count >= 1, count <= UDPFragmenter.maximumFragmentCount else { return drop(.fragmentBadCount) }
        guard index < count else { return drop(.fragmentBadIndex) }
        // A packet that needed no fragmenting but starts like a fragment.
        if count == 1 { return .complete(piece) }

        if now >= nextSweep { expire(now: now) }
        // The remote's messages are found by one hash of its address per fragment (each lookup hashes it again,
        // and a packet has dozens of fragments); `slot` stays valid while no remote is added or removed.
        let slot = messages.index(forKey: remote)
        if let slot {
            expireOldest(in: slot, now: now)
            if let position = messages.values[slot].firstIndex(where: { $0.id == id }) {
                return add(piece, index: index, count: count, toMessageAt: position, in: slot)
            }
        }

        let isLast = index == count - 1
        if !isLast, (count - 1) * length + 1 > WireFormat.maximumPacketSize { return drop(.fragmentBadLength) }
        if let slot, messages.values[slot].count >= limits.messagesPerRemote {
            removeMessage(at: 0, in: slot)
            drops.count(.fragmentEvicted)
        }
        let charge = Message.charge(count: count)
        // Expired messages were removed above, at most `timeout / 4` ago.
        guard bufferedBytes + charge <= limits.bufferedBytes else { return drop(.fragmentNoRoom) }
        var message = Message(id: id, count: count, deadline: now + limits.timeout,
                              buffer: allocator.buffer(capacity: charge))
        message.store(piece, at: index)
        if let slot {
            messages.values[slot].append(message)
        } else {
            messages[remote] = [message]
        }
        bufferedBytes += charge
        messageCount += 1
        return .pending
    }

    /// Discards every message whose time is up at `now` (`fragment_timeout`). The listener calls it from a
    /// timer while messages are in progress, so that their memory and counts do not wait for traffic.
    mutating func expire(now: NIODeadline) {
        nextSweep = now + .nanoseconds(limits.timeout.nanoseconds / 4)
        guard !messages.isEmpty else { return }
        var slot = messages.startIndex
        var hasEmpty = false
        while slot != messages.endIndex {
            expireOldest(in: slot, now: now)
            hasEmpty = hasEmpty || messages.values[slot].isEmpty
            slot = messages.index(after: slot)
        }
        if hasEmpty { messages = messages.filter { !$0.value.isEmpty } }
    }

    /// Forgets every message in progress (the listener stopped).
    mutating func removeAll() {
        messages = [:]
        bufferedBytes = 0
        messageCount = 0
    }

    // MARK: Internals

    private mutating func drop(_ reason: UDPEdgeListener.DropReason) -> Outcome {
        drops.count(reason)
        return .dropped(reason)
    }

    /// The remote's messages are oldest first, so the expired ones lead.
    private mutating func expireOldest(in slot: Slot, now: NIODeadline) {
        while let oldest = messages.values[slot].first, oldest.deadline <= now {
            removeMessage(at: 0, in: slot)
            drops.count(.fragmentTimeout)
        }
    }

    @discardableResult
    private mutating func removeMessage(at position: Int, in slot: Slot) -> Message {
        // An emptied list stays until the next sweep (`expire`): a stream of messages from one remote does not
        // allocate a list for each.
        let message = messages.values[slot].remove(at: position)
        bufferedBytes -= message.charge
        messageCount -= 1
        return message
    }

    private mutating func add(_ piece: ByteBuffer, index: Int, count: Int, toMessageAt position: Int,
                              in slot: Slot) -> Outcome {
        // Only the scalars: a copy of the message would keep its buffer shared and make the writes copy it.
        let state = messages.values[slot][position].state
        guard state.count == count else { return drop(.fragmentBadCount) }
        guard state.received & (1 << UInt64(index)) == 0 else { return drop(.fragmentDuplicate) }
        let length = piece.readableBytes
        if index == count - 1 {
            if let pieceSize = state.pieceSize,
               length > pieceSize || (count - 1) * pieceSize + length > WireFormat.maximumPacketSize {
                return drop(.fragmentBadLength)
            }
        } else if let pieceSize = state.pieceSize {
            guard length == pieceSize else { return drop(.fragmentBadLength) }
        } else {
            // The first piece that is not the last: it sets the size, which the last must not exceed.
            let last = state.lastPieceSize ?? 1
            guard last <= length, (count - 1) * length + last <= WireFormat.maximumPacketSize else {
                return drop(.fragmentBadLength)
            }
        }
        // In place (the dictionary's values and the array modify without copying the buffer).
        messages.values[slot][position].store(piece, at: index)
        guard state.received.nonzeroBitCount + 1 == count else { return .pending }
        return .complete(Self.packet(of: removeMessage(at: position, in: slot)))
    }

    /// The pieces of a complete message as one packet.
    private static func packet(of message: Message) -> ByteBuffer {
        let slot = UDPFragmenter.maximumPieceSize
        // Both set: a complete message of 2 or more fragments has its last piece and another one.
        let pieceSize = message.pieceSize ?? slot
        let last = message.lastPieceSize ?? 0
        var buffer = message.buffer
        buffer.moveWriterIndex(to: (message.count - 1) * slot + last)
        if pieceSize < slot {
            for index in 1..<message.count {
                let length = index == message.count - 1 ? last : pieceSize
                _ = try? buffer.copyBytes(at: index * slot, to: index * pieceSize, length: length)
            }
        }
        buffer.moveWriterIndex(to: (message.count - 1) * pieceSize + last)
        return buffer
    }
}
