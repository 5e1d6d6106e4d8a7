import Foundation
import WOWKit

extension OverlaySimulation {
    /// Writes one line per node that ever joined: where it sat, when it started and how long it took to
    /// become routable and to hold its far links.
    func writeCSV(to path: String) throws {
        var text = "index,address,nat,start_s,routable_s,far_s,live\n"
        for n in nodes {
            let routable = n.routableAt.map { String(format: "%.4f", ($0 - n.startedAt).seconds) } ?? ""
            let far = n.farLinksAt.map { String(format: "%.4f", ($0 - n.startedAt).seconds) } ?? ""
            text += "\(n.index),\(n.node.address.hex),\(n.nat.rawValue),\(String(format: "%.3f", n.startedAt.seconds)),\(routable),\(far),\(n.isLive)\n"
        }
        do {
            try text.write(toFile: path, atomically: true, encoding: .utf8)
        } catch {
            throw SimulationError.setup("cannot write CSV to \(path): \(error.localizedDescription)")
        }
    }
}
