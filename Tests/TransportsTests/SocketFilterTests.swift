import NIOCore
@testable import Transports
import WOWKit
import XCTest

/// The kernel's programs (`SocketFilter`) run here by a small classic-BPF interpreter over made-up
/// packets, for cases no loopback test reaches (IPv6 sources, IPv4 options, thousands of remotes);
/// `UDPTransportTests` and `TCPTransportTests` show the kernel running them.
final class SocketFilterTests: XCTestCase {
    /// A packet as the program sees it: the IP header and the UDP header (reached at `networkOffset`) and the
    /// data (the UDP payload for steering; the UDP header and payload for the socket filter).
    struct Packet {
        var network: [UInt8]
        var data: [UInt8]
    }

    enum Fault: Error { case badLoad(UInt32), unknown(SocketFilter.Instruction), ranOff }

    /// Runs `program` as Linux would (a load out of range ends it with 0).
    static func run(_ program: [SocketFilter.Instruction], on packet: Packet) throws -> UInt32 {
        var a: UInt32 = 0
        var memory = [UInt32](repeating: 0, count: 16)
        var pc = 0
        func load(_ k: UInt32, size: Int) -> UInt32? {
            let bytes: [UInt8]
            var offset: Int
            if k >= SocketFilter.networkOffset {
                bytes = packet.network
                offset = Int(k - SocketFilter.networkOffset)
            } else {
                bytes = packet.data
                offset = Int(k)
            }
            guard offset + size <= bytes.count else { return nil }
            var value: UInt32 = 0
            for _ in 0..<size { value = value << 8 | UInt32(bytes[offset]); offset += 1 }
            return value
        }
        var steps = 0
        while pc < program.count {
            steps += 1
            XCTAssertLessThan(steps, 10_000)
            let i = program[pc]
            pc += 1
            switch i.code {
            case 0x30, 0x28, 0x20:
                guard let value = load(i.k, size: i.code == 0x30 ? 1 : i.code == 0x28 ? 2 : 4) else { return 0 }
                a = value
            case 0x60: a = memory[Int(i.k)]
            case 0x02: memory[Int(i.k)] = a
            case 0x54: a &= i.k
            case 0x15: pc += a == i.k ? Int(i.jt) : Int(i.jf)
            case 0x05: pc += Int(i.k)
            case 0x06: return i.k
            default: throw Fault.unknown(i)
            }
        }
        throw Fault.ranOff
    }

    static func ipv4(from source: String, port: UInt16, options: Bool = false) throws -> Packet {
        let address = try SocketAddress(ipAddress: source, port: Int(port))
        guard case .v4(let v4) = address else { throw Fault.badLoad(0) }
        let s = withUnsafeBytes(of: v4.address.sin_addr.s_addr) { Array($0) }
        var header: [UInt8] = [options ? 0x46 : 0x45, 0, 0, 60, 0, 0, 0, 0, 64, 17, 0, 0] + s + [198, 18, 0, 1]
        if options { header += [1, 1, 1, 0] }
        return Packet(network: header + [UInt8(port >> 8), UInt8(port & 0xFF), 0x0F, 0xA0, 0, 20, 0, 0],
                      data: [1, 0x0A])
    }

    static func ipv6(from source: String, port: UInt16, nextHeader: UInt8 = 17) throws -> Packet {
        let address = try SocketAddress(ipAddress: source, port: Int(port))
        guard case .v6(let v6) = address else { throw Fault.badLoad(0) }
        let s = withUnsafeBytes(of: v6.address.sin6_addr) { Array($0) }
        let header: [UInt8] = [0x60, 0, 0, 0, 0, 20, nextHeader, 64] + s + [UInt8](repeating: 0, count: 15) + [1]
        return Packet(network: header + [UInt8(port >> 8), UInt8(port & 0xFF), 0x0F, 0xA0, 0, 20, 0, 0],
                      data: [1, 0x0A])
    }

    /// A packet from `remote`'s address, IPv4 or IPv6 as the address is.
    static func packet(from remote: SocketAddress, port: UInt16) throws -> Packet {
        remote.protocol == .inet6 ? try ipv6(from: remote.ipAddress!, port: port) : try ipv4(from: remote.ipAddress!, port: port)
    }

    func testKnownIPv4RemotesGoToSocketZeroAndEveryoneElseToTheStrangers() throws {
        var known: [SocketAddress] = []
        for host in 1...60 {
            for port in [4000, 4001, 50_000 + host] {
                known.append(try SocketAddress(ipAddress: "198.18.\(host / 10).\(host)", port: port))
            }
        }
        let (program, left) = SocketFilter.steering(to: known.shuffled())
        XCTAssertEqual(left, 0)
        XCTAssertEqual(program, SocketFilter.steering(to: known).program, "the same remotes give the same program")
        for remote in known {
            let packet = try Self.ipv4(from: remote.ipAddress!, port: UInt16(remote.port!))
            XCTAssertEqual(try Self.run(program, on: packet), 0, "\(remote)")
        }
        XCTAssertEqual(try Self.run(program, on: Self.ipv4(from: "198.18.0.1", port: 4002)), 1, "another port")
        XCTAssertEqual(try Self.run(program, on: Self.ipv4(from: "198.18.200.1", port: 4000)), 1, "another host")
        XCTAssertEqual(try Self.run(program, on: Self.ipv4(from: "198.18.0.1", port: 4000, options: true)), 1,
                       "IPv4 options: a stranger")
        XCTAssertEqual(try Self.run(SocketFilter.steering(to: []).program, on: Self.ipv4(from: "198.18.0.1", port: 4000)), 1)
    }

    func testIPv6AndIPv4MappedRemotes() throws {
        let known = [try SocketAddress(ipAddress: "fd00::1:2", port: 4000),
                     try SocketAddress(ipAddress: "fd00::1:3", port: 4000),
                     try SocketAddress(ipAddress: "::ffff:198.18.0.7", port: 4500)]
        let program = SocketFilter.steering(to: known).program
        XCTAssertEqual(try Self.run(program, on: Self.ipv6(from: "fd00::1:2", port: 4000)), 0)
        XCTAssertEqual(try Self.run(program, on: Self.ipv6(from: "fd00::1:3", port: 4000)), 0)
        XCTAssertEqual(try Self.run(program, on: Self.ipv4(from: "198.18.0.7", port: 4500)), 0, "v4-mapped: an IPv4 header")
        for stranger in ["fd00::1:4", "fd01::1:2", "fd00:0:0:1::1:2", "::1"] {
            XCTAssertEqual(try Self.run(program, on: Self.ipv6(from: stranger, port: 4000)), 1, stranger)
        }
        XCTAssertEqual(try Self.run(program, on: Self.ipv6(from: "fd00::1:2", port: 4001)), 1)
        XCTAssertEqual(try Self.run(program, on: Self.ipv6(from: "fd00::1:2", port: 4000, nextHeader: 0)), 1,
                       "an extension header: a stranger")
    }

    func testRemotesBeyondTheProgramsRoomAreLeftOutAndCounted() throws {
        var known: [SocketAddress] = []
        for index in 0..<2_000 {
            known.append(try SocketAddress(ipAddress: "198.18.\(index / 250).\(index % 250 + 1)", port: 4000))
        }
        known.append(try SocketAddress(ipAddress: "fd00::9", port: 4000))
        let (program, left) = SocketFilter.steering(to: known)
        XCTAssertLessThanOrEqual(program.count, SocketFilter.maximumLength)
        XCTAssertGreaterThan(left, 0)
        var steered = 0
        for remote in known where try Self.run(program, on: Self.packet(from: remote, port: 4000)) == 0 { steered += 1 }
        XCTAssertEqual(steered + left, known.count)
        // Many ports on one host: at most `maximumPortsPerAddress` of them.
        let ports = try (0..<300).map { try SocketAddress(ipAddress: "198.18.0.1", port: 5000 + $0) }
        let many = SocketFilter.steering(to: ports)
        XCTAssertEqual(many.left, 300 - SocketFilter.maximumPortsPerAddress)
        XCTAssertEqual(try Self.run(many.program, on: Self.ipv4(from: "198.18.0.1", port: 5000)), 0)
    }

    /// A tcp listener's filter of addresses at their share of connections: their packets (SYNs) are dropped,
    /// whatever the port, IPv4 with options, IPv6 and IPv4-mapped included; everyone else's are kept.
    func testDroppingSourcesDropsThoseAndKeepsTheRest() throws {
        let sources = [try SocketAddress(ipAddress: "198.18.64.1", port: 50_000),
                       try SocketAddress(ipAddress: "198.18.64.2", port: 1),
                       try SocketAddress(ipAddress: "fd00::1:2", port: 443),
                       try SocketAddress(ipAddress: "::ffff:198.18.64.9", port: 4001)]
        let (program, left) = SocketFilter.droppingSources(sources.shuffled())
        XCTAssertEqual(left, 0)
        XCTAssertEqual(program, SocketFilter.droppingSources(sources).program, "the same sources give the same program")
        let drop = SocketFilter.drop, keep = SocketFilter.keep
        XCTAssertEqual(try Self.run(program, on: Self.ipv4(from: "198.18.64.1", port: 4001)), drop)
        XCTAssertEqual(try Self.run(program, on: Self.ipv4(from: "198.18.64.2", port: 9)), drop, "any port")
        XCTAssertEqual(try Self.run(program, on: Self.ipv4(from: "198.18.64.2", port: 9, options: true)), drop,
                       "IPv4 options move nothing the filter reads")
        XCTAssertEqual(try Self.run(program, on: Self.ipv4(from: "198.18.64.9", port: 4001)), drop, "v4-mapped: an IPv4 header")
        XCTAssertEqual(try Self.run(program, on: Self.ipv6(from: "fd00::1:2", port: 443)), drop)
        XCTAssertEqual(try Self.run(program, on: Self.ipv6(from: "fd00::1:2", port: 443, nextHeader: 6)), drop)
        for other in ["198.18.64.3", "198.18.0.1", "127.0.0.1"] {
            XCTAssertEqual(try Self.run(program, on: Self.ipv4(from: other, port: 4001)), keep, other)
        }
        for other in ["fd00::1:3", "fd00::2:2", "fd01::1:2", "::1"] {
            XCTAssertEqual(try Self.run(program, on: Self.ipv6(from: other, port: 443)), keep, other)
        }
        let none = SocketFilter.droppingSources([SocketAddress]()).program
        XCTAssertEqual(try Self.run(none, on: Self.ipv4(from: "198.18.64.1", port: 4001)), keep)
        XCTAssertEqual(try Self.run(none, on: Self.ipv6(from: "fd00::1:2", port: 443)), keep)
    }

    func testDroppingSourcesBeyondTheProgramsRoomAreLeftOutAndCounted() throws {
        var sources: [SocketAddress] = []
        for index in 0..<2_500 {
            sources.append(try SocketAddress(ipAddress: "198.18.\(index / 250).\(index % 250 + 1)", port: 1))
        }
        for index in 0..<20 { sources.append(try SocketAddress(ipAddress: "fd00::\(index + 1)", port: 1)) }
        let (program, left) = SocketFilter.droppingSources(sources)
        XCTAssertLessThanOrEqual(program.count, SocketFilter.maximumLength)
        XCTAssertGreaterThan(left, 0)
        var dropped = 0
        for source in sources where try Self.run(program, on: Self.packet(from: source, port: 1)) == SocketFilter.drop {
            dropped += 1
        }
        XCTAssertEqual(dropped + left, sources.count)
    }

    func testTheWireVersionFilterKeepsOnlyDatagramsBeginningWithIt() throws {
        let udpHeader: [UInt8] = [0x0F, 0xA0, 0x0F, 0xA0, 0, 12, 0, 0]
        let keep = Packet(network: [], data: udpHeader + [WireFormat.version, 0x0A, 0, 0])
        let drop = Packet(network: [], data: udpHeader + [0x02, 0x0A, 0, 0])
        let empty = Packet(network: [], data: udpHeader)
        XCTAssertEqual(try Self.run(SocketFilter.wireVersion, on: keep), UInt32.max)
        XCTAssertEqual(try Self.run(SocketFilter.wireVersion, on: drop), 0)
        XCTAssertEqual(try Self.run(SocketFilter.wireVersion, on: empty), 0)
    }
}
