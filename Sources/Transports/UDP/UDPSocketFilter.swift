import NIOCore
import WOWKit

/// The udp listener's programs (`SocketFilter`).
extension SocketFilter {
    /// The socket index strangers are steered to.
    static let strangerSocket: UInt32 = 1
    /// Ports of one address a program checks at most (a conditional jump reaches 255 instructions).
    static let maximumPortsPerAddress = 120

    /// Keeps datagrams that begin with WOW's wire version, drops the rest (a socket filter: its data starts at
    /// the UDP header, and what it returns is the length kept).
    static let wireVersion: [Instruction] = [
        .loadByte(8),
        .jumpIfEqual(UInt32(WireFormat.version), 0, 1),
        .ret(keep),
        .ret(drop),
    ]

    /// The steering program for the remotes in `known`: returns 0 (the listener's socket) for a datagram from one
    /// of them, `strangerSocket` for any other. Remotes beyond what fits in `maximumLength` are left out
    /// (their datagrams still arrive, on the stranger socket); IPv4 with options and IPv6 with extension
    /// headers count as strangers. Deterministic: the same remotes give the same program.
    static func steering(to known: some Sequence<SocketAddress>) -> (program: [Instruction], left: Int) {
        var v4: [UInt32: Set<UInt16>] = [:]
        var v6: [[UInt32]: Set<UInt16>] = [:]
        for remote in known {
            guard let port = remote.port.flatMap(UInt16.init(exactly:)), let source = Source(remote) else { continue }
            switch source {
            case .v4(let word): v4[word, default: []].insert(port)
            case .v6(let words): v6[words, default: []].insert(port)
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
