import ArgumentParser
import Foundation
import WOWKit

/// `wow bench alloc`: heap allocations per packet on each stage of the data path, in steady state.
struct AllocationBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "alloc",
        abstract: "Count heap allocations per packet on each stage of the data path (needs the preloaded counter).",
        discussion: """
            Needs Scripts/allocation-counter.c built and preloaded (Linux, glibc):
              clang -shared -fPIC -O2 -o /tmp/allocation-counter.so Scripts/allocation-counter.c
              LD_PRELOAD=/tmp/allocation-counter.so wow bench alloc
            Stages: frame encode, seal and open on an established secure channel; node send (device ->
            virtual network -> route -> encode -> seal -> edge) and node receive (edge -> open -> decode ->
            route -> virtual network -> device) between two secured nodes in this process; and udp
            send+receive between two udp listeners on 127.0.0.1 on one event loop. Each stage warms up first,
            then counts the allocations of the thread doing the work, divided by the packets.
            """
    )

    @Option(help: "Packets counted per stage, in 100...10000000.")
    var packets = 10_000

    @Option(help: "IPv4 packet size in bytes, in 28...65000 (default: the default MTU, whose frames fit one datagram).")
    var size = VirtualNetwork.defaultMTU

    @Flag(help: "Print one JSON object instead of the table.")
    var json = false

    func validate() throws {
        guard (100...10_000_000).contains(packets) else { throw ValidationError("--packets must be in 100...10000000, got \(packets)") }
        guard (28...65_000).contains(size) else { throw ValidationError("--size must be in 28...65000, got \(size)") }
    }

    func run() throws {
        let report = try AllocationBenchmark(packets: packets, size: size).run()
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
            return
        }
        print("WOW allocation benchmark: \(report.bytes)-byte packets, \(report.build) build")
        for stage in report.stages {
            let name = stage.name.padding(toLength: 20, withPad: " ", startingAt: 0)
            print("  \(name) \(String(format: "%8.2f", stage.allocations_per_packet)) allocations/packet"
                  + "   (\(stage.allocations) over \(stage.packets) packets)")
        }
    }
}
