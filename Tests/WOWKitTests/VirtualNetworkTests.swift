import NIOCore
import XCTest

@testable import WOWKit

/// The virtual network's decisions, packet by packet, without a node: routing by destination IP, what is
/// never carried, anti-spoofing and ICMP errors.
final class VirtualNetworkTests: XCTestCase {
    private let network = NetworkID(bytes: [UInt8](repeating: 7, count: NetworkID.byteCount))!
    private let local = VirtualIP("100.64.0.1")!
    private let peer = VirtualIP("100.64.0.2")!
    private lazy var vnet = VirtualNetwork(settings: VirtualNetwork.Settings(), localIPs: [local], networkID: network)
    private let now = Timestamp(nanoseconds: 5_000_000_000)
    private let local6 = VirtualIP("fd77:6f77::1")!
    private let peer6 = VirtualIP("fd77:6f77::2")!

    /// An IPv6 packet `source` -> `destination` with next header `next` and `payload`.
    static func packet6(from source: VirtualIP, to destination: VirtualIP, next: UInt8 = 17,
                        payload: [UInt8] = Array(repeating: 0xAB, count: 12)) -> ByteBuffer {
        var bytes: [UInt8] = [0x60, 0, 0, 0, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF), next, 64]
        bytes += source.bytes + destination.bytes + payload
        return ByteBuffer(bytes: bytes)
    }

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
        XCTAssertEqual(vnet.fromDevice(ByteBuffer(bytes: [0x60] + Array(repeating: 0, count: 30)), now: now),
                       .drop(reason: "ip_truncated"))
        XCTAssertEqual(vnet.fromDevice(ByteBuffer(bytes: [0x50] + Array(repeating: 0, count: 39)), now: now),
                       .drop(reason: "ip_bad_version"))
        var mapped = Self.packet6(from: VirtualIP("fd77:6f77::1")!, to: VirtualIP("fd77:6f77::2")!)
        mapped.setBytes([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 100, 64, 0, 2], at: 24)
        XCTAssertEqual(vnet.fromDevice(mapped, now: now), .drop(reason: "ip_v4_mapped"))
        var short6 = Self.packet6(from: VirtualIP("fd77:6f77::1")!, to: VirtualIP("fd77:6f77::2")!)
        short6.setInteger(UInt16(500), at: 4)
        XCTAssertEqual(vnet.fromDevice(short6, now: now), .drop(reason: "ip_bad_total_length"))
        XCTAssertEqual(vnet.fromDevice(ByteBuffer(), now: now), .drop(reason: "ip_empty"))
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
        // Nobody sits at the address the IP hashes to, but a dual-stack node may hold it: ask first.
        XCTAssertEqual(vnet.undeliverable(error, now: now), .lookUp(absent))
        XCTAssertEqual(vnet.undeliverable(error, now: now + .milliseconds(100)), .nothing, "the answer decides")
        let icmp = try XCTUnwrap(vnet.notHeld(absent, now: now + .milliseconds(200)))
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
        // At most one a second per destination; once nobody holds it, errors are answered without asking again.
        XCTAssertEqual(vnet.undeliverable(error, now: now + .milliseconds(500)), .nothing)
        guard case .icmp = vnet.undeliverable(error, now: now + .seconds(2)) else { return XCTFail("expected ICMP") }
        XCTAssertEqual(vnet.undeliverable(error, now: now + .seconds(6)), .lookUp(absent), "asked again after 5 s")
        // Errors about packets that were not ours, or not data, produce nothing.
        XCTAssertEqual(vnet.undeliverable(RoutingError(code: .absentDestination, destination: Address.forVirtualIP(peer, network: network),
                                                        payloadType: .data, reporter: ring), now: now + .seconds(9)), .nothing)
        XCTAssertEqual(vnet.undeliverable(RoutingError(code: .absentDestination, destination: ring, payloadType: .connectToMe,
                                                        reporter: ring), now: now + .seconds(9)), .nothing)
    }

    func testICMPErrorsNeverAnswerICMPErrors() {
        let absent = VirtualIP("100.64.0.9")!
        // An ICMP destination-unreachable of our own, toward an absent host.
        _ = vnet.fromDevice(Self.packet(from: local, to: absent, proto: 1, payload: [3, 1] + Array(repeating: 0, count: 34)), now: now)
        let error = RoutingError(code: .absentDestination, destination: Address.forVirtualIP(absent, network: network),
                                 payloadType: .data, reporter: Address.forVirtualIP(peer, network: network))
        XCTAssertEqual(vnet.undeliverable(error, now: now), .lookUp(absent))
        XCTAssertNil(vnet.notHeld(absent, now: now))
        // The same for ICMPv6 errors (type 1).
        var dual = VirtualNetwork(settings: VirtualNetwork.Settings(), localIPs: [local, local6], networkID: network)
        let absent6 = VirtualIP("fd77:6f77::9")!
        _ = dual.fromDevice(Self.packet6(from: local6, to: absent6, next: 58, payload: [1, 3] + Array(repeating: 0, count: 46)), now: now)
        XCTAssertEqual(dual.undeliverable(RoutingError(code: .absentDestination, destination: Address.forVirtualIP(absent6, network: network),
                                                       payloadType: .data, reporter: .zero), now: now), .lookUp(absent6))
        XCTAssertNil(dual.notHeld(absent6, now: now))
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
        XCTAssertEqual(vnet.undeliverable(error, now: now + .seconds(1)), .nothing,
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

    // MARK: - IPv6

    func testIPv6PacketsGoByTheirOwnNetworkAndMulticastIsNotCarried() {
        var dual = VirtualNetwork(settings: VirtualNetwork.Settings(), localIPs: [local, local6], networkID: network)
        let packet = Self.packet6(from: local6, to: peer6)
        XCTAssertEqual(dual.fromDevice(packet, now: now), .send(packet, to: Address.forVirtualIP(peer6, network: network)))
        XCTAssertEqual(dual.fromDevice(Self.packet6(from: local6, to: VirtualIP("ff02::16")!), now: now), .drop(reason: "multicast"))
        XCTAssertEqual(dual.fromDevice(Self.packet6(from: VirtualIP("fd77:6f77::5")!, to: peer6), now: now),
                       .drop(reason: "foreign_source"))
        // A v6-only node's device does not carry IPv4 from it.
        var only6 = VirtualNetwork(settings: VirtualNetwork.Settings(), localIPs: [local6], networkID: network)
        XCTAssertEqual(only6.fromDevice(Self.packet(from: local, to: peer), now: now), .drop(reason: "foreign_source"))
        XCTAssertEqual(only6.fromOverlay(Self.packet(from: peer, to: local), source: Address.forVirtualIP(peer, network: network), now: now),
                       .drop(reason: "not_for_this_node"))
        let genuine = Self.packet6(from: peer6, to: local6)
        XCTAssertEqual(only6.fromOverlay(genuine, source: Address.forVirtualIP(peer6, network: network), now: now), .write(genuine))
    }

    func testIPv6OutsideThePrefixGetsICMPv6NoRoute() throws {
        var dual = VirtualNetwork(settings: VirtualNetwork.Settings(), localIPs: [local, local6], networkID: network)
        let original = Self.packet6(from: local6, to: VirtualIP("fd00::9")!)
        guard case .write(let icmp) = dual.fromDevice(original, now: now) else { return XCTFail("expected an ICMPv6 error") }
        let bytes = Array(icmp.readableBytesView)
        guard case .success(let header) = IPPacket.header(of: icmp) else { return XCTFail("not IPv6") }
        XCTAssertEqual(header.source, VirtualIP("fd00::9")!)
        XCTAssertEqual(header.destination, local6)
        XCTAssertEqual(header.protocolNumber, 58)
        XCTAssertEqual(Array(bytes[40...41]), [1, 0], "destination unreachable, no route")
        XCTAssertEqual(Self.icmp6Checksum(bytes), 0, "valid ICMPv6 checksum over the pseudo-header")
        XCTAssertEqual(Array(bytes[48...]), Array(original.readableBytesView.prefix(48)), "quotes header + 8 bytes")
    }

    func testIPv6UndeliverableComesBackAsAddressUnreachable() throws {
        var dual = VirtualNetwork(settings: VirtualNetwork.Settings(), localIPs: [local, local6], networkID: network)
        let absent = VirtualIP("fd77:6f77::9")!
        _ = dual.fromDevice(Self.packet6(from: local6, to: absent), now: now)
        let error = RoutingError(code: .absentDestination, destination: Address.forVirtualIP(absent, network: network),
                                 payloadType: .secure, reporter: .zero)
        XCTAssertEqual(dual.undeliverable(error, now: now), .lookUp(absent))
        let bytes = Array(try XCTUnwrap(dual.notHeld(absent, now: now)).readableBytesView)
        XCTAssertEqual(Array(bytes[40...41]), [1, 3], "destination unreachable, address unreachable")
        XCTAssertEqual(Self.icmp6Checksum(bytes), 0)
    }

    /// A node whose first IP is IPv4 sits at that IP's address: its IPv6 is learned from its certificate, and a
    /// packet from that IPv6 is its own only if its certificate names it.
    func testAFlowsSenderCountsAsHeardWithinATenthOfASecond() {
        let fromPeer = Address.forVirtualIP(peer, network: network)
        let error = RoutingError(code: .absentDestination, destination: fromPeer, payloadType: .data, reporter: fromPeer)
        // Heard at 0 and 50 ms (not written again: within `heardResolution`), then at 200 ms (written).
        for milliseconds in [0, 50, 200] {
            _ = vnet.fromOverlay(Self.packet(from: peer, to: local), source: fromPeer, now: now + .milliseconds(milliseconds))
        }
        // 10.1 s after the first packet, 9.9 s after the last: still within the answer window, no quote kept.
        _ = vnet.fromDevice(Self.packet(from: local, to: peer), now: now + .milliseconds(10_100))
        XCTAssertEqual(vnet.undeliverable(error, now: now + .milliseconds(10_100)), .nothing)
        // 10.3 s after the last packet: the peer stopped answering, so the next packet's start is quoted (and,
        // the IP being its holder's first as far as this node knows, the name service asked first).
        _ = vnet.fromDevice(Self.packet(from: local, to: peer), now: now + .milliseconds(10_500))
        XCTAssertEqual(vnet.undeliverable(error, now: now + .milliseconds(10_500)), .lookUp(peer))
    }

    func testTheHolderOfTheLastIPAskedForChangesWhenAnotherIsLearned() {
        var dual = VirtualNetwork(settings: VirtualNetwork.Settings(), localIPs: [local, local6], networkID: network)
        let peerAddress = Address.forVirtualIP(peer, network: network)
        // Asked twice: the second answer is the remembered one.
        XCTAssertEqual(dual.address(of: peer6), Address.forVirtualIP(peer6, network: network))
        XCTAssertEqual(dual.address(of: peer6), Address.forVirtualIP(peer6, network: network))
        dual.learn(peer6, heldAt: peerAddress)
        XCTAssertEqual(dual.address(of: peer6), peerAddress, "what was learned, not the IP's hash remembered before")
        XCTAssertEqual(dual.address(of: peer), peerAddress)
        dual.learn(peer6, heldAt: Address.forVirtualIP(peer6, network: network))
        XCTAssertEqual(dual.address(of: peer6), Address.forVirtualIP(peer6, network: network), "and back")
    }

    func testAnIPThatIsNotItsHoldersFirstGoesWhereItsCertificateSits() {
        var dual = VirtualNetwork(settings: VirtualNetwork.Settings(), localIPs: [local, local6], networkID: network)
        let peerAddress = Address.forVirtualIP(peer, network: network)
        let hashed = Address.forVirtualIP(peer6, network: network)
        XCTAssertEqual(dual.address(of: peer6), hashed, "unknown: where a v6-first node would sit")
        // A routing error for the hashed address asks the name service; its answer is learned.
        _ = dual.fromDevice(Self.packet6(from: local6, to: peer6), now: now)
        XCTAssertEqual(dual.undeliverable(RoutingError(code: .absentDestination, destination: hashed, payloadType: .secure,
                                                       reporter: .zero), now: now), .lookUp(peer6))
        dual.learn(peer6, heldAt: peerAddress)
        let packet = Self.packet6(from: local6, to: peer6)
        XCTAssertEqual(dual.fromDevice(packet, now: now), .send(packet, to: peerAddress))
        // From the overlay: the peer's certificate names it, a third node's does not.
        var other = VirtualNetwork(settings: VirtualNetwork.Settings(), localIPs: [VirtualIP("100.64.0.3")!, VirtualIP("fd77:6f77::3")!],
                                   networkID: network)
        other.isEntitled = { address, ip in address == peerAddress && ip == self.peer6 }
        let genuine = Self.packet6(from: peer6, to: VirtualIP("fd77:6f77::3")!)
        XCTAssertEqual(other.fromOverlay(genuine, source: peerAddress, now: now), .write(genuine))
        XCTAssertEqual(other.address(of: peer6), peerAddress, "learned from the packet: replies go straight there")
        let forged = Self.packet6(from: VirtualIP("fd77:6f77::4")!, to: VirtualIP("fd77:6f77::3")!)
        XCTAssertEqual(other.fromOverlay(forged, source: peerAddress, now: now), .drop(reason: "spoofed_source"))
        // A holder known from a certificate is used at once.
        var known = VirtualNetwork(settings: VirtualNetwork.Settings(), localIPs: [local6], networkID: network)
        var asked = 0
        known.certificateHolder = { ip in
            asked += 1
            return ip == self.peer6 ? peerAddress : Address.forVirtualIP(ip, network: self.network)
        }
        XCTAssertEqual(known.address(of: peer6), peerAddress)
        XCTAssertEqual(known.address(of: peer), Address.forVirtualIP(peer, network: network))
        for _ in 0..<3 {
            _ = known.address(of: peer6)
            _ = known.address(of: peer)
        }
        XCTAssertEqual(asked, 2, "asked once per IP, then cached (the data path asks for every packet)")
    }

    func testIPv6PrefixParsing() {
        XCTAssertEqual(VirtualPrefix("fd77:6f77::/48"), .defaultIPv6)
        XCTAssertTrue(VirtualPrefix.defaultIPv6.contains(VirtualIP("fd77:6f77:0:1::5")!))
        XCTAssertFalse(VirtualPrefix.defaultIPv6.contains(VirtualIP("fd77:6f78::5")!))
        XCTAssertFalse(VirtualPrefix.defaultIPv6.contains(VirtualIP("100.64.0.1")!), "another family")
        XCTAssertFalse(VirtualPrefix.default.contains(VirtualIP("::6440:1")!), "another family")
        XCTAssertNil(VirtualPrefix("fd77:6f77::1/48"), "host bits set")
        XCTAssertNil(VirtualPrefix("fd00::/129"))
        XCTAssertNotNil(VirtualPrefix("fd00::/8"))
        XCTAssertNil(VirtualPrefix.defaultIPv6.broadcast)
        XCTAssertNil(VirtualPrefix.defaultIPv6.netmask)
    }

    func testDeviceIPsAreTheFirstOfEachFamilyInTheirNetworks() throws {
        let members = TestNetwork()
        let settings = VirtualNetwork.Settings()
        let dual = try members.certificate("dual", virtualIPs: [local, local6, VirtualIP("fd77:6f77::8")!, VirtualIP("100.64.0.8")!])
        XCTAssertEqual(settings.localIPs(of: dual), .failure(.mtuBelowIPv6Minimum(1260)))
        var wide = settings
        wide.mtu = 1280
        XCTAssertEqual(wide.localIPs(of: dual), .success([local, local6]))
        let outside = try members.certificate("out", virtualIPs: [local, VirtualIP("fd00::1")!])
        XCTAssertEqual(wide.localIPs(of: outside), .failure(.outsidePrefix(ip: VirtualIP("fd00::1")!, prefix: .defaultIPv6)))
        XCTAssertTrue(VirtualNetworkError.outsidePrefix(ip: VirtualIP("fd00::1")!, prefix: .defaultIPv6).description
            .contains("virtual_network.ipv6_prefix"))
    }

    /// The ICMPv6 checksum check: the sum over pseudo-header and message is zero.
    static func icmp6Checksum(_ bytes: [UInt8]) -> UInt16 {
        let length = bytes.count - 40
        let pseudo = Array(bytes[8..<40]) + [UInt8(length >> 24 & 0xFF), UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF),
                                            UInt8(length & 0xFF), 0, 0, 0, 58]
        return IPv4Packet.checksum(pseudo + bytes[40...])
    }
}
