import NIOCore
import WOWKit
#if canImport(Glibc)
import Glibc
#endif

/// Classic BPF programs the kernel runs on every datagram before the node sees it (docs/security.md, "Floods"):
/// the defence against a flood that the node's own code cannot give, because the socket's queue and the
/// `recvmsg` per datagram are spent before any of it runs.
///
/// - `wireVersion` (a socket filter on each of the listener's sockets): a datagram whose first byte is not
///   `WireFormat.version` is dropped in the kernel. Every datagram of WOW's begins with it; random bytes
///   pass one time in 256.
/// - `steering(to:)` (the program of the listener's `SO_REUSEPORT` group of two sockets on one port):
///   datagrams from the remotes of its steered edges (`UDPEdge.isSteered`: outbound ones, and inbound ones
///   that sent more than one datagram) go to socket 0, everything else (strangers, a joining member's first
///   datagram, a flood from forged sources) to socket 1. The two queues are apart, and the node reads socket 1
///   a few datagrams at a time: a flood fills its own queue, not the members'.
///
/// Pure: builds instruction arrays; `UDPEdgeListener` attaches them.
enum UDPSocketFilter {
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
    /// The socket index strangers are steered to.
    static let strangerSocket: UInt32 = 1
    /// Ports of one address a program checks at most (a conditional jump reaches 255 instructions).
    static let maximumPortsPerAddress = 120

    /// Keeps datagrams that begin with WOW's wire version, drops the rest (a socket filter: its data starts at
    /// the UDP header, and what it returns is the length kept).
    static let wireVersion: [Instruction] = [
        .loadByte(8),
        .jumpIfEqual(UInt32(WireFormat.version), 0, 1),
        .ret(UInt32.max),
        .ret(0),
    ]

    /// The steering program for the remotes in `known`: returns 0 (the listener's socket) for a datagram from one
    /// of them, `strangerSocket` for any other. Remotes beyond what fits in `maximumLength` are left out
    /// (their datagrams still arrive, on the stranger socket); IPv4 with options and IPv6 with extension
    /// headers count as strangers. Deterministic: the same remotes give the same program.
    static func steering(to known: some Sequence<SocketAddress>) -> (program: [Instruction], left: Int) {
        var v4: [UInt32: Set<UInt16>] = [:]
        var v6: [[UInt32]: Set<UInt16>] = [:]
        for remote in known {
            guard let port = remote.port.flatMap(UInt16.init(exactly:)) else { continue }
            switch remote {
            case .v4(let address):
                v4[UInt32(bigEndian: address.address.sin_addr.s_addr), default: []].insert(port)
            case .v6(let address):
                let words = withUnsafeBytes(of: address.address.sin6_addr) { bytes in
                    (0..<4).map { bytes.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self).bigEndian }
                }
                // An IPv4 peer of a dual-stack socket: its datagrams carry an IPv4 header.
                if words[0] == 0, words[1] == 0, words[2] == 0xFFFF {
                    v4[words[3], default: []].insert(port)
                } else {
                    v6[words, default: []].insert(port)
                }
            case .unixDomainSocket:
                continue
            }
        }
        let net = networkOffset
        // Dispatch on the IP version: plain IPv4 (no options), IPv6 carrying UDP, else a stranger.
        var v4Section: [Instruction] = [.loadHalf(net + 20), .store(0), .loadWord(net + 12)]
        var v6Section: [Instruction] = [.loadByte(net + 6), .jumpIfEqual(17, 1, 0), .ret(strangerSocket),
                                        .loadHalf(net + 40), .store(0)]
        let head = 7
        var left = 0
        func ports(_ set: Set<UInt16>) -> [UInt16] {
            let sorted = set.sorted()
            left += max(0, sorted.count - maximumPortsPerAddress)
            return Array(sorted.prefix(maximumPortsPerAddress))
        }
        func fits(_ more: Int) -> Bool { head + v4Section.count + 1 + v6Section.count + 1 + more <= maximumLength }
        for address in v4.keys.sorted() {
            let ports = ports(v4[address]!)
            // A wrong address skips its block; each port returns 0 on a match; the address is loaded again after.
            let block = [.loadMemory(0)] + ports.flatMap { [Instruction.jumpIfEqual(UInt32($0), 0, 1), .ret(0)] }
                + [.loadWord(net + 12)]
            guard fits(block.count + 1) else { left += ports.count; continue }
            v4Section.append(.jumpIfEqual(address, 0, UInt8(block.count)))
            v4Section += block
        }
        v4Section.append(.ret(strangerSocket))
        for address in v6.keys.sorted(by: { $0.lexicographicallyPrecedes($1) }) {
            let ports = ports(v6[address]!)
            let tail = ports.flatMap { [Instruction.jumpIfEqual(UInt32($0), 0, 1), .ret(0)] }
            // Four words, each a jump past the rest of the block when it differs.
            var block: [Instruction] = []
            let blockLength = 4 * 2 + 1 + tail.count
            for (index, word) in address.enumerated() {
                block.append(.loadWord(net + 8 + UInt32(4 * index)))
                block.append(.jumpIfEqual(word, 0, UInt8(blockLength - block.count - 1)))
            }
            block.append(.loadMemory(0))
            block += tail
            guard fits(block.count) else { left += ports.count; continue }
            v6Section += block
        }
        v6Section.append(.ret(strangerSocket))
        let program: [Instruction] = [
            .loadByte(net),
            .jumpIfEqual(0x45, 0, 1),
            .jump(4),                                   // to the IPv4 section (at `head`)
            .and(0xF0),
            .jumpIfEqual(0x60, 0, 1),
            .jump(UInt32(1 + v4Section.count)),        // to the IPv6 section
            .ret(strangerSocket),
        ] + v4Section + v6Section
        return (program, left)
    }
}

/// Attaching programs to a channel's socket.
extension UDPSocketFilter {
    /// `struct sock_fprog`: the program's length and where it is (the kernel copies it during the call).
    private struct Program: @unchecked Sendable {
        var length: UInt16
        var instructions: UnsafePointer<Instruction>
    }

    /// `SO_ATTACH_FILTER`, `SO_ATTACH_REUSEPORT_CBPF` and `SO_REUSEPORT` (not in every libc's headers).
    static let attachFilter: Int32 = 26
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
}
