import XCTest

@testable import WOWKit

/// Routing decisions on hand-built tables, then packets walked hop by hop through a small ring.
final class RouterTests: XCTestCase {

    // MARK: Exact

    func testExactDeliversToSelf() {
        let empty = ConnectionTable(localAddress: at(0x10))
        XCTAssertEqual(decide(.exact, to: at(0x10), at: at(0x10), table: empty), .deliver)
        XCTAssertEqual(decide(.exact, to: at(0x10), at: at(0x10), table: sampleTable(), previous: at(0x30)), .deliver)
        XCTAssertEqual(decide(.exact, to: at(0x10), at: at(0x10), table: sampleTable(), isRingMember: false), .deliver,
                       "exact delivery does not depend on ring membership")
    }

    func testExactForwardsDirectlyToAConnectedPeerOfAnyType() {
        // 0x80 is our own leaf, 0x90 an inbound leaf: neither is a next hop, but either can be the destination.
        let table = sampleTable()
        for top: UInt64 in [0x30, 0x50, 0xC0, 0x80, 0x90] {
            XCTAssertEqual(decide(.exact, to: at(top), at: at(0x10), table: table), .forward(to: at(top)), "\(top)")
        }
        var leavesOnly = ConnectionTable(localAddress: at(0x10))
        leavesOnly.upsert(link(to: at(0x90), local: [], remote: [.leaf]))
        XCTAssertEqual(decide(.exact, to: at(0x90), at: at(0x10), table: leavesOnly, previous: at(0x90)),
                       .forward(to: at(0x90)))
    }

    func testExactForwardsGreedilyToTheStructuredPeerNearestTheDestination() {
        let table = sampleTable()
        XCTAssertEqual(decide(.exact, to: at(0x48), at: at(0x10), table: table), .forward(to: at(0x50)))
        XCTAssertEqual(decide(.exact, to: at(0x3F), at: at(0x10), table: table), .forward(to: at(0x30)))
        XCTAssertEqual(decide(.exact, to: at(0x21), at: at(0x10), table: table), .forward(to: at(0x30)))
        XCTAssertEqual(decide(.exact, to: at(0xD0), at: at(0x10), table: table), .forward(to: at(0xC0)))
        XCTAssertEqual(decide(.exact, to: at(0xE7), at: at(0x10), table: table), .forward(to: at(0xC0)),
                       "the local node is 0x29 away across zero, 0xC0 only 0x27")
    }

    func testExactNeverForwardsBackToThePreviousHop() {
        // A node whose path to 0x48 went stale (its NAT rebound) detours its relink request through us: we must
        // not hand it back, though it is our nearest peer to 0x48, but pass it to the next nearest.
        let table = sampleTable()
        XCTAssertEqual(decide(.exact, to: at(0x48), at: at(0x10), table: table, previous: at(0x50)), .forward(to: at(0x30)))
        XCTAssertEqual(decide(.exact, to: at(0x2C), at: at(0x10), table: table, previous: at(0x30)),
                       .fail(.absentDestination), "0x50 is no nearer than we are")
    }

    func testExactFailsAsAbsentWhenNoPeerIsStrictlyNearer() {
        let table = sampleTable()
        XCTAssertEqual(decide(.exact, to: at(0x1F), at: at(0x10), table: table), .fail(.absentDestination))
        XCTAssertEqual(decide(.exact, to: at(0x20), at: at(0x10), table: table), .fail(.absentDestination),
                       "0x30 is as far as the local node, not nearer")
        XCTAssertEqual(decide(.exact, to: at(0x01), at: at(0x10), table: table), .fail(.absentDestination))
        XCTAssertEqual(decide(.exact, to: at(0xE8), at: at(0x10), table: table), .fail(.absentDestination))
        XCTAssertEqual(decide(.exact, to: at(0x20), at: at(0x10), table: ConnectionTable(localAddress: at(0x10))),
                       .fail(.absentDestination))
    }

    func testAPacketForAPeerBehindASilentPathGoesThroughThePeerThatReportedItElseGreedily() {
        // 0x30's path is silent. A packet for 0x30 goes to the peer that reported 0x30 as its neighbour...
        let table = sampleTable()
        XCTAssertEqual(detour(to: at(0x30), avoiding: at(0x30), table: table, reporter: at(0x50)), .forward(to: at(0x50)))
        // ...unless that one is silent too, the packet came from there, or it is no structured peer of ours: then
        // greedily, to a structured peer strictly nearer the destination than we are (0xC0 is not).
        XCTAssertNil(detour(to: at(0x30), avoiding: at(0x30), table: table, reporter: at(0x50), silent: [at(0x30), at(0x50)]),
                     "no other way: the packet takes the silent path")
        XCTAssertEqual(detour(to: at(0x38), avoiding: at(0x30), table: table, reporter: at(0x50), previous: at(0x50)),
                       nil, "never back to the previous hop")
        XCTAssertEqual(detour(to: at(0x38), avoiding: at(0x30), table: table, reporter: at(0x77)), .forward(to: at(0x50)),
                       "0x50 is 0x18 from 0x38, we are 0x28 away")
        // A packet passing through, whose greedy next hop is behind the silent path: the next nearest.
        XCTAssertEqual(detour(to: at(0x48), avoiding: at(0x50), table: table, reporter: nil), .forward(to: at(0x30)))
        XCTAssertNil(detour(to: at(0xD0), avoiding: at(0xC0), table: table, reporter: nil),
                     "nothing else is nearer 0xD0 than we are")
        // Leaves are no detour, and left/right packets go on as they are.
        XCTAssertEqual(detour(to: at(0x80), avoiding: at(0x80), table: table, reporter: at(0x90)), .forward(to: at(0x50)),
                       "0x90 reported 0x80 but is an inbound leaf: greedily to 0x50 (0x30 away; 0xC0 is 0x40)")
        XCTAssertNil(detour(to: at(0x48), avoiding: at(0x50), table: table, reporter: nil, mode: .left))
    }

    func testLeafOnlyConnectionsAreNeverNextHops() {
        // Leaves at 0x80 (ours) and 0x90 (inbound) sit right next to these destinations; 0x50 and 0xC0 are the
        // structured peers around them.
        let table = sampleTable()
        let other = at(0xC0)
        XCTAssertEqual(decide(.exact, to: at(0x85), at: at(0x10), table: table), .forward(to: at(0x50)))
        XCTAssertEqual(decide(.exact, to: at(0x95), at: at(0x10), table: table), .forward(to: at(0xC0)))
        XCTAssertEqual(decide(.nearest, to: at(0x81), at: at(0x10), table: table, source: other),
                       .forward(to: at(0x50)))
        XCTAssertEqual(decide(.nearest, to: at(0x91), at: at(0x10), table: table, source: at(0x50)),
                       .forward(to: at(0xC0)))
        XCTAssertEqual(decide(.left, to: at(0x7F), at: at(0x10), table: table), .forward(to: at(0xC0)))
        XCTAssertEqual(decide(.right, to: at(0x95), at: at(0x10), table: table), .forward(to: at(0x50)))

        var withLeaf = ConnectionTable(localAddress: at(0x10))
        withLeaf.upsert(link(to: at(0x30)))
        withLeaf.upsert(link(to: at(0x20), local: [.leaf]))
        XCTAssertEqual(decide(.exact, to: at(0x21), at: at(0x10), table: withLeaf), .forward(to: at(0x30)))
        XCTAssertEqual(decide(.exact, to: at(0x1F), at: at(0x10), table: withLeaf), .fail(.absentDestination),
                       "a node with a structured connection does not use its gateway")
    }

    // MARK: Nearest

    func testNearestForwardsOnlyToAStrictlyNearerPeerAndOtherwiseDelivers() {
        let table = sampleTable()
        let source = at(0xC0)
        XCTAssertEqual(decide(.nearest, to: at(0x2F), at: at(0x10), table: table, source: source, previous: source),
                       .forward(to: at(0x30)))
        XCTAssertEqual(decide(.nearest, to: at(0x12), at: at(0x10), table: table, source: source, previous: source),
                       .deliver)
        XCTAssertEqual(decide(.nearest, to: at(0x20), at: at(0x10), table: table, source: source, previous: source),
                       .deliver, "a tie keeps the packet here")
        XCTAssertEqual(decide(.nearest, to: at(0x10), at: at(0x10), table: table, source: source, previous: source),
                       .deliver)
    }

    func testNearestNeverDeliversAtTheSource() {
        let table = sampleTable()
        let here = at(0x10)
        XCTAssertEqual(decide(.nearest, to: at(0x11), at: here, table: table, source: here), .forward(to: at(0x30)),
                       "the source sends even to a peer farther than itself")
        XCTAssertEqual(decide(.nearest, to: here, at: here, table: table, source: here), .forward(to: at(0x30)))
        XCTAssertEqual(decide(.nearest, to: at(0xF0), at: here, table: table, source: here), .forward(to: at(0xC0)))
        let alone = ConnectionTable(localAddress: here)
        XCTAssertEqual(decide(.nearest, to: at(0x11), at: here, table: alone, source: here), .fail(.noRoute))
    }

    func testNearestExcludesTheSourceAsNextHop() {
        let table = sampleTable()
        let source = at(0x30)
        XCTAssertEqual(decide(.nearest, to: at(0x31), at: at(0x10), table: table, source: source, previous: at(0xC0)),
                       .forward(to: at(0x50)))
        XCTAssertEqual(decide(.nearest, to: at(0x2F), at: at(0x10), table: table, source: source, previous: at(0xC0)),
                       .deliver, "0x30 is nearer but is the source; 0x50 is farther than here")

        var single = ConnectionTable(localAddress: at(0x10))
        single.upsert(link(to: at(0x30)))
        XCTAssertEqual(decide(.nearest, to: at(0x30), at: at(0x10), table: single, source: source, previous: source),
                       .deliver)
    }

    // MARK: Left and right

    func testLeftReachesTheFirstNodeStrictlyLeftOfTheDestination() {
        let table = sampleTable()
        let here = at(0x10)
        XCTAssertEqual(decide(.left, to: at(0x20), at: here, table: table), .forward(to: at(0x30)))
        XCTAssertEqual(decide(.left, to: at(0x30), at: here, table: table), .forward(to: at(0x50)),
                       "the destination itself is excluded")
        XCTAssertEqual(decide(.left, to: at(0xD0), at: here, table: table), .deliver, "wraps across zero to here")
        XCTAssertEqual(decide(.left, to: at(0x08), at: here, table: table), .deliver)
        XCTAssertEqual(decide(.left, to: here, at: here, table: table), .forward(to: at(0x30)),
                       "the node at the destination is excluded")
        XCTAssertEqual(decide(.left, to: at(0x0F), at: here, table: ConnectionTable(localAddress: here)), .deliver)
        XCTAssertEqual(decide(.left, to: here, at: here, table: ConnectionTable(localAddress: here)), .fail(.noRoute))
    }

    func testRightReachesTheFirstNodeStrictlyRightOfTheDestination() {
        let table = sampleTable()
        let here = at(0x10)
        XCTAssertEqual(decide(.right, to: at(0x60), at: here, table: table), .forward(to: at(0x50)))
        XCTAssertEqual(decide(.right, to: at(0x50), at: here, table: table), .forward(to: at(0x30)),
                       "the destination itself is excluded")
        XCTAssertEqual(decide(.right, to: at(0x30), at: here, table: table), .deliver)
        XCTAssertEqual(decide(.right, to: at(0xF0), at: here, table: table), .forward(to: at(0xC0)))
        XCTAssertEqual(decide(.right, to: at(0x05), at: here, table: table), .forward(to: at(0xC0)),
                       "wraps across zero")
        XCTAssertEqual(decide(.right, to: here, at: here, table: table), .forward(to: at(0xC0)),
                       "the node at the destination is excluded")
    }

    func testNonMembersTakeNoDeliveryForNearestLeftOrRight() {
        let table = sampleTable()
        let here = at(0x10)
        let source = at(0xC0)
        XCTAssertEqual(decide(.nearest, to: at(0x12), at: here, table: table, source: source, isRingMember: false),
                       .fail(.noRoute))
        XCTAssertEqual(decide(.left, to: at(0x08), at: here, table: table, isRingMember: false), .fail(.noRoute))
        XCTAssertEqual(decide(.right, to: at(0x30), at: here, table: table, isRingMember: false), .fail(.noRoute))
        // Forwarding is unaffected.
        XCTAssertEqual(decide(.nearest, to: at(0x2F), at: here, table: table, source: source, isRingMember: false),
                       .forward(to: at(0x30)))
        XCTAssertEqual(decide(.left, to: at(0x20), at: here, table: table, isRingMember: false), .forward(to: at(0x30)))
    }

    // MARK: Gateway

    func testANodeWithoutStructuredConnectionsSendsThroughItsOwnLeaf() {
        // The inbound leaf at 0x05 sorts first; the gateway is our own leaf at 0x90.
        var table = ConnectionTable(localAddress: at(0x10))
        table.upsert(link(to: at(0x90), local: [.leaf]))
        table.upsert(link(to: at(0x05), local: [], remote: [.leaf]))
        XCTAssertEqual(Router.gateway(in: table), at(0x90))

        let here = at(0x10)
        for mode in DeliveryMode.allCases {
            for destination in [at(0x06), at(0x20), at(0xA0), at(0xF0)] {
                XCTAssertEqual(decide(mode, to: destination, at: here, table: table, source: here, isRingMember: false),
                               .forward(to: at(0x90)), "\(mode) to \(destination.short)")
            }
        }
        XCTAssertEqual(decide(.exact, to: at(0x05), at: here, table: table, isRingMember: false),
                       .forward(to: at(0x05)), "the inbound leaf is still reachable as a destination")
        // Something a joiner behind us sent on, arriving from a third node.
        XCTAssertEqual(decide(.nearest, to: at(0x20), at: here, table: table, source: at(0x05), previous: at(0x05),
                              isRingMember: false), .forward(to: at(0x90)))
    }

    func testTheGatewayNeverSendsAPacketBackWhereItCameFrom() {
        var table = ConnectionTable(localAddress: at(0x10))
        table.upsert(link(to: at(0x90), local: [.leaf]))
        let here = at(0x10)
        let gateway = at(0x90)
        XCTAssertEqual(decide(.exact, to: here, at: here, table: table, source: gateway, previous: gateway), .deliver)
        XCTAssertEqual(decide(.exact, to: at(0x20), at: here, table: table, source: gateway, previous: gateway,
                              isRingMember: false), .fail(.absentDestination))
        for mode in [DeliveryMode.nearest, .left, .right] {
            XCTAssertEqual(decide(mode, to: at(0x20), at: here, table: table, source: gateway, previous: gateway,
                                  isRingMember: false), .fail(.noRoute), "\(mode)")
        }
    }

    /// A packet that failed here as `absentDestination` goes on through the peer that reported the destination:
    /// this node's own packets (not tunnel frames), and tunnel frames passed on (their way on may be relayed);
    /// never back to where it came from, never without a report, hops left or in another mode.
    func testAnAbsentDestinationGoesThroughThePeerThatReportedIt() {
        let (source, destination, reporter, previous) = (at(1), at(9), at(8), at(2))
        func header(_ mode: DeliveryMode = .exact, hops: UInt8 = 0, type: PayloadType = .data) -> RoutedHeader {
            RoutedHeader(hops: hops, mode: mode, payloadType: type, source: source, destination: destination)
        }
        XCTAssertEqual(Router.viaReporter(header(), previous: nil, isTunnel: false, reporter: reporter), reporter, "own data")
        XCTAssertNil(Router.viaReporter(header(type: .tunnel), previous: nil, isTunnel: true, reporter: reporter),
                     "an own tunnel frame: its edge fails over")
        XCTAssertEqual(Router.viaReporter(header(type: .tunnel), previous: previous, isTunnel: true, reporter: reporter),
                       reporter, "a tunnel frame passed on")
        XCTAssertNil(Router.viaReporter(header(), previous: previous, isTunnel: false, reporter: reporter),
                     "other packets passed on: only the sender detours, once")
        XCTAssertNil(Router.viaReporter(header(type: .tunnel), previous: reporter, isTunnel: true, reporter: reporter),
                     "not back")
        XCTAssertNil(Router.viaReporter(header(), previous: nil, isTunnel: false, reporter: nil))
        XCTAssertNil(Router.viaReporter(header(.nearest), previous: nil, isTunnel: false, reporter: reporter))
        XCTAssertNil(Router.viaReporter(header(hops: RoutedHeader.defaultTTL), previous: nil, isTunnel: false, reporter: reporter))
    }

    func testAnInboundLeafIsNoGateway() {
        // The founder of a ring, with one joiner attached: it answers for the ring, and has nowhere to send.
        var table = ConnectionTable(localAddress: at(0x10))
        table.upsert(link(to: at(0x90), local: [], remote: [.leaf]))
        let here = at(0x10)
        let joiner = at(0x90)
        XCTAssertNil(Router.gateway(in: table))
        XCTAssertEqual(decide(.exact, to: at(0x20), at: here, table: table, source: here), .fail(.absentDestination))
        XCTAssertEqual(decide(.nearest, to: at(0x20), at: here, table: table, source: here), .fail(.noRoute))
        XCTAssertEqual(decide(.nearest, to: at(0x95), at: here, table: table, source: joiner, previous: joiner), .deliver)
        XCTAssertEqual(decide(.left, to: at(0x95), at: here, table: table, source: joiner, previous: joiner), .deliver)
        XCTAssertEqual(decide(.right, to: at(0x95), at: here, table: table, source: joiner, previous: joiner), .deliver)
        XCTAssertEqual(decide(.nearest, to: at(0x95), at: here, table: table, source: joiner, previous: joiner,
                              isRingMember: false), .fail(.noRoute))
    }

    // MARK: Walking a ring

    func testPacketsReachTheRightNodeInEveryModeWithoutLoops() {
        let ring = Ring()
        var random = SeededRandom(seed: 0x5EED_0001)
        var delivered: [DeliveryMode: Int] = [:]
        for trial in 0..<2000 {
            let mode = DeliveryMode.allCases[trial % DeliveryMode.allCases.count]
            let start = ring.nodes[Int.random(in: 0..<ring.nodes.count, using: &random)]
            let destination = ring.destination(using: &random)
            let header = RoutedHeader(mode: mode, payloadType: .data, source: start, destination: destination)
            let label = "\(mode) from \(start.short) to \(destination.short)"
            guard let trip = walk(header, from: start, in: ring.tables, ringMembers: Set(ring.nodes), label: label)
            else { continue }

            XCTAssertLessThanOrEqual(trip.path.count - 1, ring.nodes.count, label)
            XCTAssertEqual(Set(trip.path).count, trip.path.count, "loop: \(label)")
            let expected: (node: Address, decision: Router.Decision)
            switch mode {
            case .exact:
                expected = ring.nodes.contains(destination)
                    ? (destination, .deliver) : (nearest(to: destination, among: ring.nodes), .fail(.absentDestination))
                assertStrictlyDecreasing(trip.path, label) { $0.distance(to: destination).magnitude }
            case .nearest:
                expected = (nearest(to: destination, among: ring.nodes.filter { $0 != start }), .deliver)
                assertStrictlyDecreasing(Array(trip.path.dropFirst()), label) { $0.distance(to: destination).magnitude }
            case .left, .right:
                expected = (firstNode(mode, of: destination, among: ring.nodes), .deliver)
                assertStrictlyDecreasing(trip.path, label) { node in
                    node == destination ? .max
                        : mode == .left ? destination.leftDistance(to: node) : destination.rightDistance(to: node)
                }
            }
            XCTAssertEqual(trip.path.last, expected.node, label)
            XCTAssertEqual(trip.outcome, expected.decision, label)
            if trip.outcome == .deliver { delivered[mode, default: 0] += 1 }

            // The same packet, with the node that should take it not (yet) a ring member: it stops there.
            if mode != .exact {
                let members = Set(ring.nodes.filter { $0 != expected.node })
                if let stopped = walk(header, from: start, in: ring.tables, ringMembers: members, label: label) {
                    XCTAssertEqual(stopped.path.last, expected.node, "non-member: \(label)")
                    XCTAssertEqual(stopped.outcome, .fail(.noRoute), "non-member: \(label)")
                }
            }
        }
        for mode in DeliveryMode.allCases {
            XCTAssertGreaterThan(delivered[mode, default: 0], 100, "\(mode) was exercised")
        }
    }

    func testAJoiningNodeRoutesThroughItsGatewayIntoTheRing() {
        var ring = Ring()
        // The joiner sits between ring nodes; its own leaf goes to the ring node at 0xA5, and an inbound leaf from
        // another joiner at 0x30 sorts first in its table.
        let joiner = Address(high: 0x50 << 56, middle: 0, low: 0)
        let gateway = ring.nodes[5]
        let otherJoiner = Address(high: 0x30 << 56, middle: 0, low: 0)
        ring.join(joiner, through: gateway)
        ring.tables[joiner]?.upsert(link(to: otherJoiner, local: [], remote: [.leaf]))
        XCTAssertEqual(Router.gateway(in: ring.tables[joiner] ?? ConnectionTable(localAddress: joiner)), gateway)

        var random = SeededRandom(seed: 0x5EED_0002)
        for trial in 0..<800 {
            let mode = DeliveryMode.allCases[trial % DeliveryMode.allCases.count]
            let destination = ring.destination(using: &random)
            let header = RoutedHeader(mode: mode, payloadType: .connectToMe, source: joiner, destination: destination)
            let label = "\(mode) from the joiner to \(destination.short)"
            guard let trip = walk(header, from: joiner, in: ring.tables, ringMembers: Set(ring.nodes), label: label)
            else { continue }

            XCTAssertEqual(trip.path.dropFirst().first, gateway, "first hop: \(label)")
            XCTAssertLessThanOrEqual(trip.path.count - 1, ring.nodes.count + 1, label)
            XCTAssertEqual(Set(trip.path).count, trip.path.count, "loop: \(label)")
            switch mode {
            case .exact:
                if ring.nodes.contains(destination) {
                    XCTAssertEqual(trip.path.last, destination, label)
                    XCTAssertEqual(trip.outcome, .deliver, label)
                } else {
                    XCTAssertEqual(trip.path.last, nearest(to: destination, among: ring.nodes), label)
                    XCTAssertEqual(trip.outcome, .fail(.absentDestination), label)
                }
            case .nearest:
                XCTAssertEqual(trip.path.last, nearest(to: destination, among: ring.nodes), label)
                XCTAssertEqual(trip.outcome, .deliver, label)
            case .left, .right:
                XCTAssertEqual(trip.path.last, firstNode(mode, of: destination, among: ring.nodes), label)
                XCTAssertEqual(trip.outcome, .deliver, label)
            }
        }
    }

    // MARK: Helpers

    /// Local node 0x10 with structured peers 0x30, 0x50 and 0xC0, its own leaf at 0x80 and an inbound leaf at 0x90.
    private func sampleTable() -> ConnectionTable {
        var table = ConnectionTable(localAddress: at(0x10))
        table.upsert(link(to: at(0x30)))
        table.upsert(link(to: at(0x50), local: [], remote: ["structured.near"]))
        table.upsert(link(to: at(0xC0), local: ["structured.far"]))
        table.upsert(link(to: at(0x80), local: [.leaf]))
        table.upsert(link(to: at(0x90), local: [], remote: [.leaf]))
        return table
    }

    /// One decision for a packet sent by `source` (by default another node, 0xEE) to `destination`.
    private func decide(_ mode: DeliveryMode, to destination: Address, at local: Address, table: ConnectionTable,
                        source: Address = at(0xEE), previous: Address? = nil, isRingMember: Bool = true)
        -> Router.Decision {
        let header = RoutedHeader(mode: mode, payloadType: .data, source: source, destination: destination)
        return Router.decide(header, at: local, table: table, previous: previous, isRingMember: isRingMember)
    }

    /// `Router.detour` for a packet from 0xEE whose chosen hop `avoided` is behind a silent path.
    private func detour(to destination: Address, avoiding avoided: Address, table: ConnectionTable, reporter: Address?,
                        previous: Address? = nil, silent: Set<Address>? = nil, mode: DeliveryMode = .exact)
        -> Router.Decision? {
        let header = RoutedHeader(mode: mode, payloadType: .data, source: at(0xEE), destination: destination)
        let silent = silent ?? [avoided]
        return Router.detour(header, avoiding: avoided, at: table.localAddress, table: table, previous: previous,
                             reporter: reporter, isSilent: { silent.contains($0) })
    }

    /// The nodes a packet visited, from `start`, and what the last one decided.
    private struct Walk {
        var path: [Address]
        var outcome: Router.Decision
    }

    /// Carries `header` hop by hop, checking that every next hop is a connection the rules allow: a structured
    /// one, the exact destination itself, or the node's own leaf while it has no structured connection.
    private func walk(_ header: RoutedHeader, from start: Address, in tables: [Address: ConnectionTable],
                      ringMembers: Set<Address>, label: String) -> Walk? {
        var header = header
        var path = [start]
        var previous: Address?
        while path.count <= 2 * tables.count {
            let here = path[path.count - 1]
            guard let table = tables[here] else {
                XCTFail("forwarded to \(here.short), which is no node: \(label)")
                return nil
            }
            let decision = Router.decide(header, at: here, table: table, previous: previous,
                                         isRingMember: ringMembers.contains(here))
            guard case .forward(let next) = decision else { return Walk(path: path, outcome: decision) }
            guard let connection = table.connection(to: next) else {
                XCTFail("\(here.short) forwarded to \(next.short) without a connection: \(label)")
                return nil
            }
            let isDirectDelivery = header.mode == .exact && next == header.destination
            let isGateway = !table.hasStructured && connection.localTypes.contains(.leaf) && next != previous
            XCTAssertTrue(connection.isStructured || isDirectDelivery || isGateway,
                          "\(here.short) used the leaf to \(next.short) as a next hop: \(label)")
            header.hops += 1
            previous = here
            path.append(next)
        }
        XCTFail("no end after \(path.count) nodes: \(label)")
        return nil
    }

    private func assertStrictlyDecreasing(_ path: [Address], _ label: String, by measure: (Address) -> Address,
                                          file: StaticString = #filePath, line: UInt = #line) {
        for (here, next) in zip(path, path.dropFirst()) {
            XCTAssertLessThan(measure(next), measure(here), "\(here.short) -> \(next.short): \(label)",
                              file: file, line: line)
        }
    }
}

// MARK: - The ring

/// Eight nodes, irregularly spaced, each linked to its two nearest neighbours per side, with far links 0-4 and
/// 1-6 and a leaf from node 0 to node 3.
private struct Ring {
    let nodes: [Address] = [0x08, 0x28, 0x47, 0x66, 0x88, 0xA5, 0xC9, 0xE6].map(at)
    var tables: [Address: ConnectionTable] = [:]

    init() {
        for node in nodes { tables[node] = ConnectionTable(localAddress: node) }
        let count = nodes.count
        for index in 0..<count {
            for step in 1...2 { connect(index, (index + step) % count, type: "structured.near") }
        }
        connect(0, 4, type: "structured.far")
        connect(1, 6, type: "structured.far")
        connect(0, 3, type: .leaf)
    }

    /// `from` asks for a connection of `type` to `to`; both ends record it.
    private mutating func connect(_ from: Int, _ to: Int, type: ConnectionType) {
        let (a, b) = (nodes[from], nodes[to])
        add(at: a, peer: b, local: [type], remote: [])
        add(at: b, peer: a, local: [], remote: [type])
        if type != .leaf {  // near links are wanted by both ends
            add(at: b, peer: a, local: [type], remote: [])
            add(at: a, peer: b, local: [], remote: [type])
        }
    }

    private mutating func add(at node: Address, peer: Address, local: Set<ConnectionType>, remote: Set<ConnectionType>) {
        var table = tables[node] ?? ConnectionTable(localAddress: node)
        if table.contains(peer) {
            table.update(peer) {
                $0.localTypes.formUnion(local)
                $0.remoteTypes.formUnion(remote)
            }
        } else {
            table.upsert(link(to: peer, local: local, remote: remote))
        }
        tables[node] = table
    }

    /// A node outside the ring with one leaf connection of its own, to `gateway`.
    mutating func join(_ joiner: Address, through gateway: Address) {
        tables[joiner] = ConnectionTable(localAddress: joiner)
        add(at: joiner, peer: gateway, local: [.leaf], remote: [])
        add(at: gateway, peer: joiner, local: [], remote: [.leaf])
    }

    /// A node's address, one next to it, or anywhere on the ring.
    func destination(using random: inout SeededRandom) -> Address {
        let node = nodes[Int.random(in: 0..<nodes.count, using: &random)]
        switch Int.random(in: 0..<6, using: &random) {
        case 0, 1: return node
        case 2: return node &+ Address(high: 0, middle: 0, low: 1)
        case 3: return node &- Address(high: 0, middle: 0, low: 1)
        default: return random.address()
        }
    }
}

/// The node at the least ring distance from `target` (ties are not expected with these addresses).
private func nearest(to target: Address, among nodes: [Address]) -> Address {
    nodes.min { $0.distance(to: target).magnitude < $1.distance(to: target).magnitude } ?? target
}

/// The first node strictly on the mode's side of `target`.
private func firstNode(_ mode: DeliveryMode, of target: Address, among nodes: [Address]) -> Address {
    let reach = { (node: Address) in mode == .left ? target.leftDistance(to: node) : target.rightDistance(to: node) }
    return nodes.filter { $0 != target }.min { reach($0) < reach($1) } ?? target
}

/// The address whose top byte is `top` and every other bit zero.
private func at(_ top: UInt64) -> Address { Address(high: top << 56, middle: 0, low: 0) }

/// Test literals only: a bad one is a bug in this file.
private let memoryURI = try! TransportURI("memory://1:1")

private func link(to address: Address, local: Set<ConnectionType> = ["structured.near"],
                  remote: Set<ConnectionType> = []) -> Connection {
    Connection(peer: NodeInfo(address: address, uris: [memoryURI]), localTypes: local, remoteTypes: remote,
               edgeID: EdgeID(UInt64(address.high >> 56)), transport: "memory", localURI: memoryURI,
               remoteURI: memoryURI, isInbound: local.isEmpty, createdAt: .zero)
}
