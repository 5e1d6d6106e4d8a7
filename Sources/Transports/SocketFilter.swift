import NIOCore
import WOWKit
#if canImport(Glibc)
import Glibc
#endif

/// Classic BPF programs the kernel runs on every packet before the node sees it (docs/security.md, "Floods"):
/// the defence against a flood that the node's own code cannot give, because the socket's queue and the
/// system call per packet (or per connection) are spent before any of it runs.
///
/// - `wireVersion` (a socket filter on each udp socket): a datagram whose first byte is not
///   `WireFormat.version` is dropped in the kernel. Every datagram of WOW's begins with it; random bytes
///   pass one time in 256.
/// - `steering(to:)` (the program of the udp listener's `SO_REUSEPORT` group of two sockets on one port):
///   datagrams from the remotes of its steered edges (`UDPEdge.isSteered`: outbound ones, and inbound ones
///   that sent more than one datagram) go to socket 0, everything else (strangers, a joining member's first
///   datagram, a flood from forged sources) to socket 1. The two queues are apart, and the node reads socket 1
///   a few datagrams at a time: a flood fills its own queue, not the members'.
/// - `droppingSources(_:)` (a socket filter on a tcp or tls listening socket): the SYNs of addresses that hold
///   their share of inbound connections already are dropped in the kernel, so a connection flood from them
///   costs the node no accept and no close until one of their connections ends (`TCPEdgeListener`).
///
/// Pure: builds instruction arrays; the listeners attach them.
enum SocketFilter {
    /// One classic BPF instruction, laid out as Linux's `struct sock_filter`.
    struct Instruction: Equatable, CustomStringConvertible {
        var code: UInt16
        var jt: UInt8
        var jf: UInt8
        var k: UInt32

        var description: String { "{0x\(String(code, radix: 16)), \(jt), \(jf), 0x\(String(k, radix: 16))}" }

        static func loadByte(_ k: UInt32) -> Instruction { .init(code: 0x30, jt: 0, jf: 0, k: k) }
        static func loadHalf(_ k: UInt32) -> Instruction { .init(code: 0x28, jt: 0, jf: 0, k: k) }
        static func loadWord(_ k: UInt32) -> Instruction { .init(code: 0x20, jt: 0, jf: 0, k: k) }
        static func loadMemory(_ slot: UInt32) -> Instruction { .init(code: 0x60, jt: 0, jf: 0, k: slot) }
        static func store(_ slot: UInt32) -> Instruction { .init(code: 0x02, jt: 0, jf: 0, k: slot) }
        static func and(_ k: UInt32) -> Instruction { .init(code: 0x54, jt: 0, jf: 0, k: k) }
        /// If A == k, skip `jt` instructions, else `jf`.
        static func jumpIfEqual(_ k: UInt32, _ jt: UInt8, _ jf: UInt8) -> Instruction { .init(code: 0x15, jt: jt, jf: jf, k: k) }
        static func jump(_ offset: UInt32) -> Instruction { .init(code: 0x05, jt: 0, jf: 0, k: offset) }
        static func ret(_ k: UInt32) -> Instruction { .init(code: 0x06, jt: 0, jf: 0, k: k) }
    }

    /// Whether the kernel runs these programs (Linux's classic BPF).
    #if os(Linux)
    static let isAvailable = true
    #else
    static let isAvailable = false
    #endif
    /// Linux's limit on a classic program's length.
    static let maximumLength = 4_096
    /// Offsets from `networkOffset` reach the IP header wherever the program's data starts.
    static let networkOffset = UInt32(bitPattern: -0x10_0000)
    /// What a socket filter returns to keep a packet whole, or to drop it.
    static let keep = UInt32.max
    static let drop: UInt32 = 0

    /// An IP address as a program compares it: IPv4 as one word, IPv6 as four (network order, as loaded).
    enum Source: Hashable, Comparable {
        case v4(UInt32)
        case v6([UInt32])

        /// `address`'s IP; an IPv4-mapped IPv6 address (a dual-stack socket's IPv4 peer, whose packets carry
        /// an IPv4 header) as IPv4. Nil for a Unix socket.
        init?(_ address: SocketAddress) {
            switch address {
            case .v4(let v4):
                self = .v4(UInt32(bigEndian: v4.address.sin_addr.s_addr))
            case .v6(let v6):
                let words = withUnsafeBytes(of: v6.address.sin6_addr) { bytes in
                    (0..<4).map { bytes.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self).bigEndian }
                }
                self = words[0] == 0 && words[1] == 0 && words[2] == 0xFFFF ? .v4(words[3]) : .v6(words)
            case .unixDomainSocket:
                return nil
            }
        }

        static func < (a: Source, b: Source) -> Bool {
            switch (a, b) {
            case (.v4(let x), .v4(let y)): return x < y
            case (.v6(let x), .v6(let y)): return x.lexicographicallyPrecedes(y)
            case (.v4, .v6): return true
            case (.v6, .v4): return false
            }
        }
    }

    /// A socket filter that drops every packet from `sources` (their ports do not matter) and keeps the rest:
    /// on a listening tcp socket, their SYNs never make a connection. Sources beyond what fits in
    /// `maximumLength` are left out (their packets are kept). Deterministic: the same sources, the same program.
    static func droppingSources(_ sources: some Sequence<SocketAddress>) -> (program: [Instruction], left: Int) {
        let all = Set(sources.compactMap(Source.init)).sorted()
        let net = networkOffset
        var v4Section: [Instruction] = [.loadWord(net + 12)]
        var v6Section: [Instruction] = []
        var left = 0
        // Head (7), the sections, and each one's final `ret`.
        func fits(_ more: Int) -> Bool { 7 + v4Section.count + 1 + v6Section.count + 1 + more <= maximumLength }
        for source in all {
            switch source {
            case .v4(let word):
                guard fits(2) else { left += 1; continue }
                v4Section += [.jumpIfEqual(word, 0, 1), .ret(drop)]
            case .v6(let words):
                // Four words, each a jump past the rest of the block when it differs, then the drop.
                guard fits(9) else { left += 1; continue }
                for (index, word) in words.enumerated() {
                    v6Section.append(.loadWord(net + 8 + UInt32(4 * index)))
                    v6Section.append(.jumpIfEqual(word, 0, UInt8(8 - 2 * index - 1)))
                }
                v6Section.append(.ret(drop))
            }
        }
        v4Section.append(.ret(keep))
        v6Section.append(.ret(keep))
        let program: [Instruction] = [
            .loadByte(net),
            .and(0xF0),
            .jumpIfEqual(0x40, 0, 1),
            .jump(3),                                   // to the IPv4 section (at 7)
            .jumpIfEqual(0x60, 0, 1),
            .jump(UInt32(1 + v4Section.count)),        // to the IPv6 section
            .ret(keep),
        ] + v4Section + v6Section
        return (program, left)
    }
}

/// Attaching programs to a channel's socket.
extension SocketFilter {
    /// `struct sock_fprog`: the program's length and where it is (the kernel copies it during the call).
    private struct Program: @unchecked Sendable {
        var length: UInt16
        var instructions: UnsafePointer<Instruction>
    }

    /// `SO_ATTACH_FILTER`, `SO_DETACH_FILTER`, `SO_ATTACH_REUSEPORT_CBPF` and `SO_REUSEPORT` (not in every
    /// libc's headers).
    static let attachFilter: Int32 = 26
    static let detachFilter: Int32 = 27
    static let attachReuseportProgram: Int32 = 51
    static let reusePort: Int32 = 15

    enum AttachError: Error, CustomStringConvertible {
        case notASocket
        case refused(String)
        var description: String {
            switch self {
            case .notASocket: return "the channel has no socket options"
            case .refused(let reason): return reason
            }
        }
    }

    /// Attaches `program` as socket option `option` (`attachFilter`, `attachReuseportProgram`) of `channel`'s
    /// socket, at once; call on the channel's event loop.
    static func attach(_ program: [Instruction], as option: Int32, to channel: any Channel) throws {
        guard let provider = channel as? any SocketOptionProvider else { throw AttachError.notASocket }
        var result: Result<Void, any Error>?
        program.withUnsafeBufferPointer { instructions in
            let header = Program(length: UInt16(instructions.count), instructions: instructions.baseAddress!)
            // On the loop, NIO sets the option before it returns: the pointer outlives the call.
            provider.unsafeSetSocketOption(level: .init(rawValue: SOL_SOCKET), name: .init(rawValue: option),
                                           value: header)
                .assumeIsolated().whenComplete { result = $0 }
        }
        switch result {
        case .success: return
        case .failure(let error): throw AttachError.refused("\(error)")
        case nil: throw AttachError.refused("the option was not set at once (not on the channel's event loop?)")
        }
    }

    /// Removes `channel`'s socket filter, at once; call on the channel's event loop. Throws when the socket had
    /// none (ENOENT) or refused.
    static func detach(from channel: any Channel) throws {
        guard let provider = channel as? any SocketOptionProvider else { throw AttachError.notASocket }
        var result: Result<Void, any Error>?
        provider.unsafeSetSocketOption(level: .init(rawValue: SOL_SOCKET), name: .init(rawValue: detachFilter),
                                       value: Int32(0))
            .assumeIsolated().whenComplete { result = $0 }
        switch result {
        case .success: return
        case .failure(let error): throw AttachError.refused("\(error)")
        case nil: throw AttachError.refused("the option was not set at once (not on the channel's event loop?)")
        }
    }
}
