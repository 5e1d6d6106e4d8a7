import XCTest
@testable import WOWCommand
import WOWKit
import Transports

final class OverlaySimulationTests: XCTestCase {
    func testDebugSmallRing() throws {
        var options = SimulationOptions()
        options.nodes = Int(ProcessInfo.processInfo.environment["N"] ?? "6")!
        options.messages = 50
        let sim = try OverlaySimulation(options: options)
        let report = try sim.run()
        for n in sim.nodes {
            let nb = sim.trueNeighbours(of: n.node.address)!
            print(n.index, n.node.address.short, "L", nb.left.short, "R", nb.right.short, "routable", sim.isRoutable(n),
                  n.node.table.connections.map { "\($0.address.short)[\($0.localTypes.map(\.name).sorted())|\($0.remoteTypes.map(\.name).sorted())]" })
            print("   stats", n.node.stats.drops, "links", n.node.stats.linkAttempts, n.node.stats.linkFailures, "connects", n.node.stats.connectsRequested, n.node.stats.connectsFailed)
        }
        print(report.checks)
        XCTAssertTrue(report.ring_consistent)
    }
}
