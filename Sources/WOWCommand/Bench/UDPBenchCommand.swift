import ArgumentParser
import Foundation
import NIOCore
import NIOPosix

/// `wow bench udp`: packets through two `udp` listeners over loopback, large ones (fragments) with and
/// without UDP GSO/GRO against one-datagram packets.
struct UDPBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "udp",
        abstract: "Time packets between two udp listeners on 127.0.0.1: fragments with and without GSO/GRO, and small packets.",
        discussion: """
            Both listeners run on one event loop, so each figure is the sender's and the receiver's cost on one
            core. Packets go in windows (the next once the last arrived), so no socket buffer overflows.
            Throughput is of packet bytes.
            """
    )

    @Option(help: "Seconds per case, in (0, 60].")
    var seconds = 2.0

    @Option(help: "Large packet size in bytes, in 1453...65535.")
    var size = 60_000

    func validate() throws {
        guard seconds > 0, seconds <= 60 else { throw ValidationError("--seconds must be in (0, 60], got \(seconds)") }
        guard (1_453...65_535).contains(size) else { throw ValidationError("--size must be in 1453...65535, got \(size)") }
    }

    func run() throws {
        let cases = [
            // 1,400-byte packets in a row (a TCP super-segment's sealed segments): one datagram each without
            // GSO (the ratios' base), gathered into GSO writes with it.
            UDPBenchmark.Case(name: "1400 B, one datagram each", size: 1_400, window: 512,
                              segmentationOffload: false, receiveOffload: true),
            UDPBenchmark.Case(name: "1400 B, gathered (GSO + GRO)", size: 1_400, window: 512,
                              segmentationOffload: true, receiveOffload: true),
            UDPBenchmark.Case(name: "\(size) B, GSO + GRO", size: size, window: 32,
                              segmentationOffload: true, receiveOffload: true),
            UDPBenchmark.Case(name: "\(size) B, GSO only", size: size, window: 32,
                              segmentationOffload: true, receiveOffload: false),
            UDPBenchmark.Case(name: "\(size) B, GRO only", size: size, window: 32,
                              segmentationOffload: false, receiveOffload: true),
            UDPBenchmark.Case(name: "\(size) B, neither", size: size, window: 32,
                              segmentationOffload: false, receiveOffload: false),
        ]
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let loop = group.next()
        var results: [UDPBenchmark.Result] = []
        for benchCase in cases {
            let seconds = self.seconds
            let result = try loop.flatSubmit {
                do {
                    return try UDPBenchmark(benchCase, seconds: seconds, loop: loop).run()
                } catch {
                    return loop.makeFailedFuture(error)
                }
            }.wait()
            results.append(result)
        }
        print(Self.table(results))
    }

    static func table(_ results: [UDPBenchmark.Result]) -> String {
        func f(_ value: Double, _ digits: Int) -> String { String(format: "%.\(digits)f", value) }
        func pad(_ text: String, _ width: Int, left: Bool = false) -> String {
            let padding = String(repeating: " ", count: max(0, width - text.count))
            return left ? text + padding : padding + text
        }
        let build = BenchBuild.name
        var lines = ["WOW udp benchmark: two listeners on 127.0.0.1, one event loop, \(build) build; "
                     + "GSO \(System.supportsUDPSegmentationOffload ? "available" : "absent"), "
                     + "GRO \(System.supportsUDPReceiveOffload ? "available" : "absent")", ""]
        lines.append(pad("case", 28, left: true) + pad("packets/s", 11) + pad("Gbit/s", 8) + pad("us/packet", 11)
                     + pad("dgrams/pkt", 12) + pad("GSO wr", 8) + pad("GRO rd", 8) + pad("lost", 6)
                     + pad("x 1st Gbit/s", 14))
        let base = results.first?.gbit_per_s ?? 1
        for r in results {
            lines.append(pad(r.name, 28, left: true) + pad(f(r.packets_per_s, 0), 11) + pad(f(r.gbit_per_s, 2), 8)
                         + pad(f(1e6 / max(r.packets_per_s, 1), 1), 11) + pad(f(r.datagrams_per_packet, 1), 12)
                         + pad("\(r.gso_writes)", 8) + pad("\(r.gro_reads)", 8) + pad("\(r.lost)", 6)
                         + pad(f(r.gbit_per_s / base, 2), 14))
        }
        return lines.joined(separator: "\n")
    }
}
