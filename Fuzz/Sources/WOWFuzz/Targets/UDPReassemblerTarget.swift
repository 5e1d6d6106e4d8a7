import NIOCore
@testable import Transports
import WOWKit

/// The udp transport's fragment reassembler (`UDPFragmentReassembler`), fed a script: the fragments of one
/// genuine packet from one remote, in an order the input chooses, among raw and crafted fragments, replays and
/// copies from seven other remotes, with the clock moving and expiry sweeps between them.
///
/// Checks: a completed packet is 1 to 65,535 bytes; the genuine remote only ever completes the genuine
/// packet, byte for byte, and does complete it when all its fragments came within the timeout; the byte and
/// message accounting stays within its limits, and is back at zero once everything has expired.
enum UDPReassemblerTarget: FuzzTarget {
    static let name = "udp-reassembler"
    static let summary = "UDPFragmentReassembler: genuine fragments in any order among forged ones; byte-exact result, bounded state"

    enum Op: UInt8, CaseIterable { case genuine, raw, crafted, tick, expire, repeatGenuine, copyGenuine }

    static let remotes: [SocketAddress] = (0..<8).map {
        do { return try SocketAddress(ipAddress: "198.18.0.\($0 + 1)", port: 4000) } catch { fatalError("\(error)") }
    }
    static let allocator = ByteBufferAllocator()
    static let start = NIODeadline.uptimeNanoseconds(1_000_000_000)

    /// A packet of `size` bytes whose bytes depend on their position and `seed` (misplaced pieces show).
    static func packet(size: Int, seed: UInt8) -> ByteBuffer {
        ByteBuffer(bytes: PacketSamples.payload(size, seed: Int(seed)))
    }

    /// The datagrams of `packet` as the listener sends them.
    static func datagrams(of packet: ByteBuffer, id: UInt32) -> [ByteBuffer] {
        var all = UDPFragmenter.fragments(of: packet, messageID: id, allocator: allocator)
        var result: [ByteBuffer] = []
        while all.readableBytes > 0 {
            result.append(all.readSlice(length: min(UDPTransport.maximumDatagramSize, all.readableBytes))!)
        }
        return result
    }

    static func run(_ data: [UInt8]) {
        var input = FuzzInput(data)
        let size = Int(input.u16())
        let genuine = size > 0 ? packet(size: size, seed: input.byte()) : nil
        var pending = genuine.map { datagrams(of: $0, id: input.u32()) } ?? []
        // The order the genuine fragments go in: a permutation the input picks.
        if pending.count > 1 {
            for index in stride(from: pending.count - 1, to: 0, by: -1) {
                pending.swapAt(index, Int(input.byte()) % (index + 1))
            }
        }
        var sent: [ByteBuffer] = []
        var reassembler = UDPFragmentReassembler()
        var now = start
        var firstGenuine: NIODeadline?
        var lastGenuine = start
        var genuineCompleted = false

        func receive(_ datagram: ByteBuffer, from remote: Int) {
            let outcome = reassembler.receive(datagram, from: remotes[remote], now: now, allocator: allocator)
            if case .complete(let packet) = outcome {
                require((1...WireFormat.maximumPacketSize).contains(packet.readableBytes),
                        "a completed packet of \(packet.readableBytes) bytes")
                if remote == 0 {
                    require(packet == genuine, "remote 0 completed \(packet.readableBytes) bytes that are not the genuine \(size)")
                    genuineCompleted = true
                }
            }
            require(reassembler.bufferedBytes >= 0 && reassembler.bufferedBytes <= reassembler.limits.bufferedBytes,
                    "\(reassembler.bufferedBytes) bytes buffered")
            require(reassembler.messageCount >= 0 && reassembler.messageCount <= remotes.count * reassembler.limits.messagesPerRemote,
                    "\(reassembler.messageCount) messages in progress")
        }

        func sendGenuine() {
            guard !pending.isEmpty else { return }
            let datagram = pending.removeFirst()
            if firstGenuine == nil { firstGenuine = now }
            lastGenuine = now
            sent.append(datagram)
            receive(datagram, from: 0)
        }

        var steps = 0
        while !input.isEmpty && steps < 256 {
            steps += 1
            guard let op = Op(rawValue: input.byte() % UInt8(Op.allCases.count)) else { continue }
            switch op {
            case .genuine:
                sendGenuine()
            case .raw:
                let remote = 1 + Int(input.byte()) % 7
                receive(ByteBuffer(bytes: input.bytes(Int(input.u16() % 1600))), from: remote)
            case .crafted:
                let remote = 1 + Int(input.byte()) % 7
                var datagram = allocator.buffer(capacity: 1500)
                datagram.writeInteger(WireFormat.version)
                datagram.writeInteger(FragmentPacket.kind)
                datagram.writeInteger(UInt32(input.byte() % 4), endianness: .big)
                datagram.writeInteger(input.byte())
                datagram.writeInteger(input.byte())
                datagram.writeRepeatingByte(input.byte(), count: Int(input.u16() % 1500))
                receive(datagram, from: remote)
            case .tick:
                now = now + .milliseconds(Int64(input.byte()) * 10)
            case .expire:
                reassembler.expire(now: now)
            case .repeatGenuine:
                if !sent.isEmpty { receive(sent[Int(input.byte()) % sent.count], from: 0) }
            case .copyGenuine:
                let remote = 1 + Int(input.byte()) % 7
                if !sent.isEmpty { receive(sent[Int(input.byte()) % sent.count], from: remote) }
            }
        }
        while !pending.isEmpty { sendGenuine() }
        if genuine != nil, let first = firstGenuine, lastGenuine - first < reassembler.limits.timeout {
            require(genuineCompleted, "the genuine packet of \(size) bytes (\(sent.count) fragments within the timeout) never completed")
        }
        reassembler.expire(now: now + .seconds(2))
        require(reassembler.bufferedBytes == 0 && reassembler.messageCount == 0,
                "after expiry: \(reassembler.bufferedBytes) bytes, \(reassembler.messageCount) messages left")
    }

    static func seeds() -> [(key: String, bytes: [UInt8])] {
        func script(size: UInt16, seed: UInt8 = 1, id: UInt32 = 77, order: [UInt8] = [], ops: [UInt8]) -> [UInt8] {
            var writer = FuzzInputWriter()
            writer.u16(size)
            if size > 0 {
                writer.byte(seed)
                writer.u32(id)
                let count = UDPFragmenter.fragmentCount(forPacketSize: Int(size))
                for index in 0..<max(0, count - 1) { writer.byte(index < order.count ? order[index] : 0) }
            }
            writer.append(ops)
            return writer.bytes
        }
        let genuine = Op.genuine.rawValue, crafted = Op.crafted.rawValue, tick = Op.tick.rawValue
        return [
            ("small", script(size: 100, ops: [genuine])),
            ("two", script(size: 2000, ops: [genuine, genuine])),
            ("two-reversed", script(size: 2000, order: [0], ops: [genuine, tick, 50, genuine])),
            ("largest", script(size: 65_535, order: [3, 1, 4, 1, 5, 9, 2, 6], ops: [genuine, genuine, genuine])),
            ("interleaved", script(size: 5000, ops: [genuine, crafted, 1, 0, 0, 2, 0xAA, 0x05, 0xA4, genuine,
                                                     crafted, 1, 0, 1, 2, 0xBB, 0x01, 0x00, Op.raw.rawValue, 2, 0, 9,
                                                     1, 9, 0, 0, 0, 0, 0, 1, 0xFF, genuine])),
            ("repeat-copy-expire", script(size: 3000, ops: [genuine, Op.repeatGenuine.rawValue, 0,
                                                            Op.copyGenuine.rawValue, 3, 0, tick, 200, Op.expire.rawValue,
                                                            genuine, genuine])),
            ("timeout", script(size: 4000, ops: [genuine, tick, 255, genuine])),
            ("forged-only", script(size: 0, ops: [crafted, 4, 2, 3, 4, 0x11, 0x05, 0xA4, crafted, 4, 2, 0, 4, 0x11, 0x05,
                                                  0xA4, crafted, 4, 2, 1, 4, 0x11, 0x05, 0xA4, crafted, 4, 2, 2, 4, 0x11,
                                                  0x00, 0x10])),
        ]
    }
}
