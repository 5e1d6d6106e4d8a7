import Foundation
import NIOCore
import Transports
import WOWKit
import XCTest
@testable import WOWSimulator

/// A node that crashes and is started again at once (same identity, same URIs: `wow run` under a supervisor)
/// knows nothing of its old connections and sessions, but its peers still hold theirs: the first packets they
/// send over them are lost until they find out (an unknown-session answer, a new secure session, a `notLinked`
/// answer to the ping that follows it, a refused reclaim). `Scripts/long-run.py` saw pings lost for seconds
/// after each churn. Virtual time: exact figures; `WOW_RESTART_SEED` picks another run.
final class PeerRestartSimulationTests: XCTestCase {
    func testEveryNodeReachesARestartedNodeAndNoStaleConnectionOutlivesItsFirstPackets() throws {
        var options = SimulationOptions()
        options.nodes = 2
        options.seed = UInt64(ProcessInfo.processInfo.environment["WOW_RESTART_SEED"] ?? "5") ?? 5
        let sim = try OverlaySimulation(options: options)
        for _ in 0..<40 {
            try sim.addNode(nat: .open)
            sim.scheduler.run(for: .milliseconds(100))
        }
        sim.scheduler.run(for: .seconds(30))
        XCTAssertEqual(sim.ringViolations(), 0)

        let crashed = sim.liveNodes[7]
        sim.crash(crashed)
        sim.scheduler.run(for: .milliseconds(200))
        let restarted = try sim.restart(crashed)
        XCTAssertEqual(restarted.node.address, crashed.node.address, "the same identity")
        let restartedAt = sim.scheduler.now
        XCTAssertTrue(sim.scheduler.run(until: restartedAt + .seconds(10)) { !sim.isRoutable(restarted) },
                      "the new incarnation is routable")
        func stalePeers() -> [OverlaySimulation.SimulatedNode] {
            sim.liveNodes.filter {
                $0.node.table.contains(restarted.node.address) && !restarted.node.table.contains($0.node.address)
            }
        }
        let staleAtStart = stalePeers().count

        // Every other node sends the restarted one a request every 200 ms for 5 s; it answers each.
        var sent: [(number: Int, at: Timestamp)] = []
        var answered: Set<Int> = []
        restarted.node.onDeliver = { header, payload in restarted.node.send(data: payload, to: header.source) }
        let others = sim.liveNodes.filter { $0 !== restarted }
        for other in others {
            other.node.onDeliver = { _, payload in
                if let number = payload.getInteger(at: payload.readerIndex, as: UInt64.self) { answered.insert(Int(number)) }
            }
        }
        let flowStart = sim.scheduler.now
        func sendRound() {
            guard sim.scheduler.now - flowStart < .seconds(5) else { return }
            for other in others {
                var payload = ByteBufferAllocator().buffer(capacity: 8)
                payload.writeInteger(UInt64(sent.count))
                sent.append((sent.count, sim.scheduler.now))
                other.node.send(data: payload, to: restarted.node.address)
            }
            _ = sim.scheduler.schedule(after: .milliseconds(200)) { sendRound() }
        }
        sendRound()
        sim.scheduler.run(for: .seconds(8))

        let lost = sent.filter { !answered.contains($0.number) }
        let lastLost = lost.map { ($0.at - flowStart).seconds }.max()
        print("peer restart (virtual time, seed \(options.seed)): routable \((flowStart - restartedAt).seconds) s after "
              + "the restart, \(staleAtStart) peers holding stale connections; \(lost.count) of \(sent.count) requests "
              + "lost, the last sent \(lastLost.map { "\($0) s" } ?? "-") after the flow began")
        XCTAssertEqual(stalePeers().count, 0, "every stale connection was found out")
        // What is lost is lost while the stale connections on the way are found out: a few round trips (up to
        // 250 ms each here) from their first packet.
        XCTAssertLessThanOrEqual(lastLost ?? 0, 2, "requests sent 2 s after the flow began were lost: \(lost)")
        XCTAssertEqual(sim.ringViolations(), 0)
    }
}
