import ArgumentParser
import Foundation
import WOWKit

/// `wow bench path`: the time per packet of the node's data path, against sealing and opening alone.
struct PathBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "path",
        abstract: "Time the node's data path per packet (device -> route -> seal -> edge, and back) against sealing and opening alone.",
        discussion: """
            Two secured nodes in this process, on one thread, without sockets: A's virtual interface takes
            packets as from its device and its frames are captured; then they are handed to B's edge, opened,
            routed and written to B's device (one that counts). Cases: single IP packets of --size bytes; TCP
            super-segments of 50 segments of 1,208 bytes crossing whole, 8 segments per overlay packet, and one
            segment per overlay packet (put back together at B). The baseline, measured in the same run:
            sealing and opening 1,260-byte messages on an established secure channel alone. ns/KB counts both
            sides per KB of IP packet bytes; "x seal+open" is that over the baseline's.
            """
    )

    @Option(help: "Seconds per case, in (0, 60].")
    var seconds = 1.0

    @Option(help: "IPv4 packet size of the single-packet case in bytes, in 28...65000 (default: the default MTU).")
    var size = VirtualNetwork.defaultMTU

    @Option(help: "Run only these cases (repeatable): packets, whole, 8 or 1 (segments per overlay packet).")
    var only: [String] = []

    @Flag(help: "Print one JSON object instead of the table.")
    var json = false

    func validate() throws {
        guard seconds > 0, seconds <= 60 else { throw ValidationError("--seconds must be in (0, 60], got \(seconds)") }
        guard (28...65_000).contains(size) else { throw ValidationError("--size must be in 28...65000, got \(size)") }
        for name in only where !PathBenchmark.caseNames.contains(name) {
            throw ValidationError("--only: no case '\(name)'; the cases are \(PathBenchmark.caseNames.joined(separator: ", "))")
        }
    }

    func run() throws { print(try output()) }

    /// The report, as the table or one JSON object.
    func output() throws -> String {
        let report = try PathBenchmark(seconds: seconds, size: size, only: Set(only)).run()
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            return String(decoding: try encoder.encode(report), as: UTF8.self)
        }
        var lines = ["WOW data path benchmark: one thread, two nodes in this process, \(report.build) build",
                     String(format: "  seal+open alone (1,260-byte messages): %.0f ns/KB", report.seal_open_ns_per_kb),
                     "  case                          overlay packets  send ns/pkt  receive ns/pkt    ns/KB  x seal+open"]
        for c in report.cases {
            lines.append("  " + c.name.padding(toLength: 30, withPad: " ", startingAt: 0)
                         + String(format: "%15d  %11.0f  %14.0f  %7.0f  %11.2f", c.overlay_packets, c.send_ns_per_segment,
                                  c.receive_ns_per_segment, c.ns_per_kb, c.vs_seal_open))
        }
        lines.append("  (ns per IP packet or TCP segment carried; whole super-segments skip the udp transport's fragmenting, not timed here)")
        return lines.joined(separator: "\n")
    }
}
