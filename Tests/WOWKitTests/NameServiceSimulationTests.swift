import NIOCore
import Transports
import XCTest

@testable import WOWKit
@testable import WOWSimulator

/// The name service among secured nodes on the simulated WAN (20–250 ms round trips), all times virtual:
/// every member's name resolves from every other member, a name's storer can crash, and a forged record
/// changes nothing.
final class NameServiceSimulationTests: XCTestCase {
    private func ring(_ count: Int, seed: UInt64 = 3) throws -> OverlaySimulation {
        var options = SimulationOptions()
        options.nodes = count
        options.seed = seed
        let simulation = try OverlaySimulation(options: options)
        for _ in 0..<count {
            try simulation.addNode()
            simulation.scheduler.run(for: .milliseconds(100))
        }
        simulation.scheduler.run(for: .seconds(20))
        XCTAssertEqual(simulation.ringViolations(), 0)
        return simulation
    }

    /// Looks `name` up from `node` and runs virtual time until the answer; returns it and how long it took.
    private func lookUp(_ name: String, from node: Node, in simulation: OverlaySimulation)
        -> (Result<NameRecord?, NameLookupTimeout>, Duration)? {
        var outcome: Result<NameRecord?, NameLookupTimeout>?
        let start = simulation.scheduler.now
        var end = start
        node.lookUpName(name) { outcome = $0; end = simulation.scheduler.now }
        simulation.scheduler.run(until: start + .seconds(10)) { outcome == nil }
        return outcome.map { ($0, end - start) }
    }

    private func name(_ node: Node) -> String { node.certificate(of: node.address)?.name ?? "" }

    func testEveryMemberFindsOthersByNameAndAnUnknownNameIsNobodys() throws {
        let simulation = try ring(30)
        let nodes = simulation.nodes.map(\.node)
        var times: [Duration] = []
        for (index, asker) in nodes.enumerated() {
            for step in [7, 13] {
                let wanted = nodes[(index + step) % nodes.count]
                let (result, took) = try XCTUnwrap(lookUp(name(wanted).uppercased(), from: asker, in: simulation))
                let record = try XCTUnwrap(try result.get(), "\(name(asker)) found no \(name(wanted))")
                XCTAssertEqual(record.address, wanted.address)
                XCTAssertEqual(record.certificate.name, name(wanted))
                times.append(took)
            }
        }
        times.sort()
        print("name lookups in a 30-node ring: p50 \(times[times.count / 2]), max \(times.last!)")
        XCTAssertEqual(try lookUp("nobody", from: nodes[0], in: simulation)?.0.get(), .some(nil))

        // resolve: a name leads to the member's address and virtual IPs.
        var resolved: Result<ResolvedTarget, NameLookupFailure>?
        nodes[0].resolve(name(nodes[15])) { resolved = $0 }
        simulation.scheduler.run(until: simulation.scheduler.now + .seconds(5)) { resolved == nil }
        XCTAssertEqual(try resolved?.get().address, nodes[15].address)
        nodes[0].resolve("nobody") { resolved = $0 }
        simulation.scheduler.run(until: simulation.scheduler.now + .seconds(5)) { resolved == nil }
        XCTAssertEqual(resolved.map { if case .failure(let f) = $0 { return f.description } else { return "found" } },
                       "no member named 'nobody' is known")
    }

    func testANameOutlivesItsStorerCrashing() throws {
        let simulation = try ring(20)
        let nodes = simulation.liveNodes.map(\.node)
        let network = simulation.authority.authority.network
        let wanted = nodes[4]
        let key = NameRecord.ringKey(forKey: name(wanted), network: network)
        let storer = try XCTUnwrap(simulation.liveNodes.filter { $0.node !== wanted }
            .min { key.distance(to: $0.node.address) < key.distance(to: $1.node.address) })
        XCTAssertNotNil(storer.node.names.record(forKey: name(wanted), unixTime: storer.node.wallClock()), "the storer holds it")
        simulation.crash(storer)
        let asker = try XCTUnwrap(simulation.liveNodes.map(\.node).first { $0 !== wanted && !$0.table.contains(wanted.address) })
        let (result, _) = try XCTUnwrap(lookUp(name(wanted), from: asker, in: simulation))
        XCTAssertEqual(try result.get()?.address, wanted.address, "a replica answers")
    }

    func testAForgedRecordIsRefusedAndTheGenuineOneStillAnswers() throws {
        let simulation = try ring(30)
        let nodes = simulation.nodes.map(\.node)
        let (victim, mallory) = (nodes[2], nodes[5])
        let network = simulation.authority.authority.network
        let credentials = try XCTUnwrap(mallory.edgeSecurity?.credentials)
        // Mallory takes the victim's certificate (public) and signs a record with its own key.
        let forged = NameRecord(certificate: try XCTUnwrap(victim.certificate(of: victim.address)),
                                publishedAt: mallory.wallClock() + 100,
                                signature: credentials.identity.sign(NameRecord.signedBytes(victim.certificate(of: victim.address)!,
                                                                                            publishedAt: mallory.wallClock() + 100)))
        let key = NameRecord.ringKey(forKey: name(victim), network: network)
        let header = RoutedHeader(mode: .nearest, payloadType: .namePut, source: mallory.address, destination: key)
        mallory.route(RoutedPacket(header: header, payload: NameMessage.put(forged, isReplica: false).encoded()), previous: nil)
        simulation.scheduler.run(for: .seconds(2))
        XCTAssertEqual(nodes.map { $0.stats.drops.byName["name_bad_signature"] ?? 0 }.reduce(0, +), 1)
        let asker = try XCTUnwrap(nodes.first { $0 !== victim && $0 !== mallory && !$0.table.contains(victim.address) })
        let (result, _) = try XCTUnwrap(lookUp(name(victim), from: asker, in: simulation))
        XCTAssertEqual(try result.get()?.signature.isEmpty, false)
        XCTAssertEqual(try result.get()?.address, victim.address)
    }
}
