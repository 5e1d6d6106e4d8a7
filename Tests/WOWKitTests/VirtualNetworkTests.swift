import NIOCore
import XCTest

@testable import WOWKit

/// The virtual network's decisions, packet by packet, without a node: routing by destination IP, what is
/// never carried, anti-spoofing and ICMP errors.
final class VirtualNetworkTests: XCTestCase {
    private let network = NetworkID(bytes: [UInt8](repeating: 7, count: NetworkID.byteCount))!
    private let local = VirtualIP("100.64.0.1")!
    private let peer = VirtualIP("100.64.0.2")!
    private lazy var vnet = VirtualNetwork(settings: VirtualNetwork.Settings(), localIP: local, networkID: network)
    private let now = Timestamp(nanoseconds: 5_000_000_000)

    /// An IPv4 packet `source` -> `destination` with protocol `proto` and `payload` (checksum not checked by
    /// the virtual network, left zero).
    static func packet(from source: VirtualIP, to destination: VirtualIP, proto: UInt8 = 17,
                       payload: [UInt8] = Array(repeating: 0xAB, count: 12)) -> ByteBuffer {
        let total = 20 + payload.count
        var bytes: [UInt8] = [0x45, 0, UInt8(total >> 8), UInt8(total & 0xFF), 0, 1, 0, 0, 64, proto, 0, 0]
        bytes += source.bytes + destination.bytes + payload
        return ByteBuffer(bytes: bytes)
    }

    func testPacketFromDeviceGoesToTheDestinationIPsRingAddress() {
        let packet = Self.packet(from: local, to: peer)
        XCTAssertEqual(vnet.fromDevice(packet, now: now), .send(packet, to: Address.forVirtualIP(peer, network: network)))
        XCTAssertEqual(vnet.stats.packetsFromDevice, 1)
        XCTAssertEqual(vnet.stats.bytesFromDevice, packet.readableBytes)
    }

    func testBroadcastMulticastAndForeignPacketsAreNotCarried() {
        XCTAssertEqual(vnet.fromDevice(Self.packet(from: local, to: VirtualIP("224.0.0.251")!), now: now),
                       .drop(reason: "multicast"))
        XCTAssertEqual(vnet.fromDevice(Self.packet(from: local, to: VirtualIP("255.255.255.255")!), now: now),
                       .drop(reason: "broadcast"))
        XCTAssertEqual(vnet.fromDevice(Self.packet(from: local, to: VirtualIP("100.127.255.255")!), now: now),
                       .drop(reason: "broadcast"))
        XCTAssertEqual(vnet.fromDevice(Self.packet(from: VirtualIP("100.64.0.9")!, to: peer), now: now),
                       .drop(reason: "foreign_source"))
        XCTAssertEqual(vnet.stats.drops, ["multicast": 1, "broadcast": 2, "foreign_source": 1])
    }

    func testMalformedPacketsAreDroppedWithTheirReason() {
        var ipv6 = ByteBuffer(bytes: [0x60] + Array(repeating: 0, count: 39))
        XCTAssertEqual(vnet.fromDevice(ipv6, now: now), .drop(reason: "ip_v6"))
        ipv6 = ByteBuffer()
        XCTAssertEqual(vnet.fromDevice(ipv6, now: now), .drop(reason: "ip_empty"))
        XCTAssertEqual(vnet.fromDevice(ByteBuffer(bytes: [0x45, 0, 0]), now: now), .drop(reason: "ip_truncated"))
        var bad = Self.packet(from: local, to: peer)
        bad.setInteger(UInt8(0x44), at: 0)
        XCTAssertEqual(vnet.fromDevice(bad, now: now), .drop(reason: "ip_bad_header_length"))
        var long = Self.packet(from: local, to: peer)
        long.setInteger(UInt16(500), at: 2)
        XCTAssertEqual(vnet.fromDevice(long, now: now), .drop(reason: "ip_bad_total_length"))
        XCTAssertEqual(vnet.fromOverlay(long, source: Address.forVirtualIP(peer, network: network), now: now),
                       .drop(reason: "ip_bad_total_length"))
    }

    func testOverlayPacketIsWrittenOnlyFromItsSendersOwnIP() {
        let fromPeer = Address.forVirtualIP(peer, network: network)
        let genuine = Self.packet(from: peer, to: local)
        XCTAssertEqual(vnet.fromOverlay(genuine, source: fromPeer, now: now), .write(genuine))
        // The peer claims a third node's IP: dropped, whatever the payload.
        let forged = Self.packet(from: VirtualIP("100.64.0.3")!, to: local)
        XCTAssertEqual(vnet.fromOverlay(forged, source: fromPeer, now: now), .drop(reason: "spoofed_source"))
        let elsewhere = Self.packet(from: peer, to: VirtualIP("100.64.0.3")!)
        XCTAssertEqual(vnet.fromOverlay(elsewhere, source: fromPeer, now: now), .drop(reason: "not_for_this_node"))
        XCTAssertEqual(vnet.stats.packetsToDevice, 1)
    }

    func testUndeliverablePacketComesBackAsICMPHostUnreachableQuotingIt() throws {
        let absent = VirtualIP("100.64.0.9")!
        let ring = Address.forVirtualIP(absent, network: network)
        let original = Self.packet(from: local, to: absent, payload: Array(0..<20))
        _ = vnet.fromDevice(original, now: now)
        let error = RoutingError(code: .absentDestination, destination: ring, payloadType: .secure,
                                 reporter: Address.forVirtualIP(peer, network: network))
        let icmp = try XCTUnwrap(vnet.undeliverable(error, now: now))
        let bytes = Array(icmp.readableBytesView)
        XCTAssertEqual(bytes.count, 20 + 8 + 28)
        guard case .success(let header) = IPv4Packet.header(of: icmp) else { return XCTFail("not IPv4") }
        XCTAssertEqual(header.source, absent, "from the unreachable host: the kernel drops packets from its own IP")
        XCTAssertEqual(header.destination, local)
        XCTAssertEqual(header.protocolNumber, 1)
        XCTAssertEqual(IPv4Packet.checksum(bytes[0..<20]), 0, "valid IP header checksum")
        XCTAssertEqual(Array(bytes[20..<22]), [3, 1], "destination unreachable, host")
        XCTAssertEqual(IPv4Packet.checksum(bytes[20...]), 0, "valid ICMP checksum")
        XCTAssertEqual(Array(bytes[28...]), Array(original.readableBytesView.prefix(28)), "quotes header + 8 bytes")
        // At most one a second per destination.
        XCTAssertNil(vnet.undeliverable(error, now: now + .milliseconds(500)))
        XCTAssertNotNil(vnet.undeliverable(error, now: now + .seconds(2)))
        // Errors about packets that were not ours, or not data, produce nothing.
        XCTAssertNil(vnet.undeliverable(RoutingError(code: .absentDestination, destination: Address.forVirtualIP(peer, network: network),
                                                      payloadType: .data, reporter: ring), now: now + .seconds(5)))
        XCTAssertNil(vnet.undeliverable(RoutingError(code: .absentDestination, destination: ring, payloadType: .connectToMe,
                                                      reporter: ring), now: now + .seconds(5)))
    }

    func testICMPErrorsNeverAnswerICMPErrors() {
        let absent = VirtualIP("100.64.0.9")!
        // An ICMP destination-unreachable of our own, toward an absent host.
        _ = vnet.fromDevice(Self.packet(from: local, to: absent, proto: 1, payload: [3, 1] + Array(repeating: 0, count: 34)), now: now)
        let error = RoutingError(code: .absentDestination, destination: Address.forVirtualIP(absent, network: network),
                                 payloadType: .data, reporter: Address.forVirtualIP(peer, network: network))
        XCTAssertNil(vnet.undeliverable(error, now: now))
    }

    func testPacketOutsideThePrefixGetsNetUnreachable() {
        guard case .write(let icmp) = vnet.fromDevice(Self.packet(from: local, to: VirtualIP("198.18.0.9")!), now: now) else {
            return XCTFail("expected an ICMP error")
        }
        XCTAssertEqual(Array(icmp.readableBytesView)[20...21], [3, 0])
    }

    func testDestinationThatAnswersNeedsNoQuote() {
        let fromPeer = Address.forVirtualIP(peer, network: network)
        _ = vnet.fromOverlay(Self.packet(from: peer, to: local), source: fromPeer, now: now)
        _ = vnet.fromDevice(Self.packet(from: local, to: peer), now: now + .seconds(1))
        let error = RoutingError(code: .absentDestination, destination: fromPeer, payloadType: .data, reporter: fromPeer)
        XCTAssertNil(vnet.undeliverable(error, now: now + .seconds(1)),
                     "a peer that answered within 10 s has no quote kept (no allocation per packet on a live flow)")
    }

    func testPrefixParsing() {
        XCTAssertEqual(VirtualPrefix("100.64.0.0/10"), .default)
        XCTAssertEqual(VirtualPrefix("100.64.0.0/16")?.broadcast, VirtualIP("100.64.255.255"))
        XCTAssertNil(VirtualPrefix("100.64.0.1/10"), "host bits set")
        XCTAssertNil(VirtualPrefix("100.64.0.0/33"))
        XCTAssertNil(VirtualPrefix("100.64.0.0"))
        XCTAssertNil(VirtualPrefix("100.64.0.0/-1"))
        XCTAssertTrue(VirtualPrefix.default.contains(VirtualIP("100.127.1.2")!))
        XCTAssertFalse(VirtualPrefix.default.contains(VirtualIP("100.128.0.1")!))
    }

    func testDefaultMTUFitsTheLongestEncapsulationInto1500Bytes() {
        XCTAssertEqual(VirtualNetwork.defaultMTU, 1260)
        XCTAssertLessThanOrEqual(VirtualNetwork.defaultMTU + VirtualNetwork.longestEncapsulation + 40 + 8, 1500)
    }
}
