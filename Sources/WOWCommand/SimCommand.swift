import ArgumentParser
import Foundation
import NIOCore
import NIOPosix
import Transports
import WOWKit
import WOWSimulator

/// `wow sim`: a seeded, deterministic simulation of an overlay joining, routing and churning.
struct SimCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sim",
        abstract: "Simulate N nodes joining an overlay over a WAN (virtual time) and measure join times, hops and delivery.",
        discussion: """
            Every node runs the real WOW node code (linker, router, overlords) over the in-memory transport on
            virtual time, so a run is deterministic for a given --seed. Reports the time until each node is
            routable (connected to its true left and right neighbours) and until it holds its far links, the
            hop counts and delivery ratio of random exact-mode messages, and ring consistency.

            With --web, a page draws the run from its event stream (every join, link, crash and repair, on
            virtual time) while it runs, and afterwards as a timeline to play, pause and scrub, until Ctrl-C.
            """
    )

    @Option(help: "Number of nodes that join, one per --join-interval-ms.")
    var nodes = 1000

    @Option(help: "Random seed; the same seed replays the same run.")
    var seed: UInt64 = 1

    @Option(help: "Round-trip time range in milliseconds, drawn per pair of hosts: MIN-MAX (or one value).")
    var rtt = "20-250"

    @Option(help: "Probability that a packet is lost, in [0, 1).")
    var loss = 0.0

    @Option(help: "NAT mix, e.g. port-restricted=0.4,symmetric=0.2,udp-blocked=0.1 (the rest public). Kinds: \(NATBehaviour.allCases.map(\.rawValue).joined(separator: ", ")).")
    var nat: String?

    @Option(help: "Nodes leaving (crashing) and as many joining per virtual minute, after the join phase.")
    var churn = 0.0

    @Option(help: "How long the churn phase lasts, in virtual minutes.")
    var churnMinutes = 5.0

    @Option(help: "Milliseconds between two nodes starting.")
    var joinIntervalMs = 100.0

    @Option(help: "Virtual seconds of quiet after the joins (at least 30) before measuring.")
    var settleS = 30.0

    @Option(help: "Random exact-mode messages sent to measure delivery and hops.")
    var messages = 1000

    @Option(help: "Flows started after the joins between random unconnected pairs (10 packets/s each way), to measure the time to their shortcuts.")
    var flows = 0

    @Option(help: "Name lookups after the joins, each by a random member for a random member it is not connected to, to measure the name service.")
    var nameLookups = 0

    @Option(help: "Near neighbours per side (structured.near per_side).")
    var near = 2

    @Flag(help: "Run the nodes without certificates or encryption (to measure what security costs).")
    var insecure = false

    @Flag(help: "Give joiners only their bootstrap node's URIs, not its handshake key (their first link then takes two round trips).")
    var noBootstrapKeys = false

    @OptionGroup var output: ReportOutput

    @Option(help: "Write per-node join times to this CSV file.")
    var csv: String?

    @OptionGroup var webOptions: WebOptions

    @Option(help: "Write an SVG chart to this file: the CDF of join times (to routable, to far links) and the hop-count histogram.")
    var plot: String?

    func validate() throws {
        _ = try options()
        if let plot { try Self.checkWritable(plot, option: "--plot") }
        _ = try webOptions.address()
    }

    /// Refuses a path whose directory does not exist or is not writable, before a long run.
    static func checkWritable(_ path: String, option: String) throws {
        guard !path.isEmpty else { throw ValidationError("\(option): empty path") }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            throw ValidationError("\(option) \(path): is a directory; give a file name such as \(path)/sim.svg")
        }
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ValidationError("\(option) \(path): directory \(directory) does not exist")
        }
        guard FileManager.default.isWritableFile(atPath: directory) else {
            throw ValidationError("\(option) \(path): directory \(directory) is not writable")
        }
    }

    // Virtual time costs little, so a simulation allows far longer spans than `wow demo`. The other options'
    // limits are the simulation's own (`SimulationOptions.validate`).
    static let churnMinutesRange = OptionRange("--churn-minutes", 0...1440.0, "minutes", excludesLowerBound: true)
    static let joinIntervalRange = OptionRange("--join-interval-ms", 0...60_000.0, "milliseconds")
    static let settleRange = OptionRange("--settle-s", 30...86_400.0, "seconds")

    func options() throws -> SimulationOptions {
        var options = SimulationOptions()
        options.nodes = nodes
        options.seed = seed
        options.roundTrip = try Self.parseRTT(rtt)
        options.loss = loss
        options.natMix = try Self.parseNAT(nat)
        options.churnPerMinute = churn
        options.churnDuration = .milliseconds(Int64(try Self.churnMinutesRange.check(churnMinutes) * 60_000))
        options.joinInterval = .microseconds(Int64(try Self.joinIntervalRange.check(joinIntervalMs) * 1000))
        options.settle = .milliseconds(Int64(try Self.settleRange.check(settleS) * 1000))
        options.messages = messages
        options.flows = flows
        options.nameLookups = nameLookups
        options.nearPerSide = near
        options.secure = !insecure
        options.bootstrapKeys = !noBootstrapKeys
        options.csvPath = csv
        do {
            try options.validate()
        } catch {
            throw ValidationError(error.description)
        }
        return options
    }

    static func parseRTT(_ text: String) throws -> ClosedRange<Duration> {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        guard (1...2).contains(parts.count), let low = Double(parts[0]), let high = Double(parts[parts.count - 1]),
              low > 0, high >= low, high <= 60_000 else {
            throw ValidationError("--rtt '\(text)': expected MIN-MAX milliseconds with 0 < MIN <= MAX <= 60000, e.g. 20-250")
        }
        return .microseconds(Int64(low * 1000)) ... .microseconds(Int64(high * 1000))
    }

    static func parseNAT(_ text: String?) throws -> [NATBehaviour: Double] {
        guard let text, !text.isEmpty else { return [:] }
        var mix: [NATBehaviour: Double] = [:]
        for item in text.split(separator: ",") {
            let pair = item.split(separator: "=")
            guard pair.count == 2, let share = Double(pair[1]), share >= 0, share <= 1 else {
                throw ValidationError("--nat: '\(item)' should be KIND=SHARE with SHARE in [0, 1]")
            }
            guard let kind = NATBehaviour(rawValue: String(pair[0])) else {
                throw ValidationError("--nat: unknown NAT kind '\(pair[0])'; kinds: \(NATBehaviour.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            mix[kind] = share
        }
        guard mix.values.reduce(0, +) <= 1.000_001 else { throw ValidationError("--nat: shares add up to more than 1") }
        return mix
    }

    func run() throws {
        let options = try options()
        let simulation = try OverlaySimulation(options: options)
        let view = try webOptions.address().map { address in
            try SimulationWebView(simulation, at: address, title: "simulation: \(options.nodes) nodes, seed \(options.seed)",
                                  announce: output.json)
        }
        defer { view?.stop() }
        let report = try simulation.run(progress: output.json ? nil : { line in print(line) })
        view?.feed.finish()
        if let plot {
            try SimulationPlot(simulation: simulation, report: report).write(to: plot)
            if !output.json { print("plot written to \(plot)") }
        }
        try output.print(report, humanReadable: Self.humanReadable)
        if view != nil {
            Self.say("wow: the run is recorded; the web view plays it back until Ctrl-C", toStandardError: output.json)
            WebView.waitForInterrupt()
        }
        // Without loss every message must arrive; with loss, messages lost on the way are expected (the
        // overlay does not retransmit data, as IP does not), so only the ring is judged.
        if !report.ring_consistent || (options.loss == 0 && report.delivery_ratio < 1) { throw ExitCode(2) }
    }

    /// A line for people: on standard output, or standard error when standard output carries JSON.
    static func say(_ line: String, toStandardError: Bool) {
        if toStandardError { FileHandle.standardError.write(Data((line + "\n").utf8)) } else { print(line) }
        fflush(nil)
    }

    /// The simulation's web view: the run's events, recorded on virtual time as they happen, served from a
    /// loop of its own while the simulation runs on this thread.
    final class SimulationWebView {
        let feed: OverlayFeed
        private let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        private let channel: any Channel

        init(_ simulation: OverlaySimulation, at address: SocketAddress, title: String, announce toStandardError: Bool) throws {
            let feed = OverlayFeed(mode: .timeline, title: title)
            self.feed = feed
            simulation.recorder = OverlayRecorder { feed.append($0) }
            do {
                channel = try WebView.serve(feed, at: address, on: group.next())
            } catch {
                try? group.syncShutdownGracefully()
                throw CommandFailure(description: "cannot serve the web view at \(address): \(error)")
            }
            SimCommand.say(WebView.announcement(channel), toStandardError: toStandardError)
        }

        func stop() {
            try? channel.close().wait()
            try? group.syncShutdownGracefully()
        }
    }

    static func humanReadable(_ r: SimulationReport) -> String {
        func f(_ v: Double, _ digits: Int = 3) -> String { String(format: "%.\(digits)f", v) }
        var lines: [String] = []
        lines.append("WOW simulation: \(r.nodes) nodes, seed \(r.seed), RTT \(f(r.rtt_ms[0], 0))-\(f(r.rtt_ms[1], 0)) ms, loss \(r.loss)")
        lines.append("  join -> routable (s):  p50 \(f(r.join_routable_s.p50))  p90 \(f(r.join_routable_s.p90))  p99 \(f(r.join_routable_s.p99))  max \(f(r.join_routable_s.max))  (\(r.join_routable_s.count) nodes)")
        lines.append("  join -> far links (s): p50 \(f(r.join_far_s.p50))  p90 \(f(r.join_far_s.p90))  p99 \(f(r.join_far_s.p99))  (\(r.join_far_s.count) nodes)")
        for c in r.checks {
            lines.append("  \(c.phase) at t=\(f(c.at_virtual_s, 1))s: \(c.live_nodes) live, ring consistent: \(c.ring_consistent ? "yes" : "NO (\(c.ring_violations) nodes)"), delivered \(c.messages_delivered)/\(c.messages_sent) (\(f(c.delivery_ratio * 100, 2))%), hops mean \(f(c.hops.mean, 2)) p99 \(f(c.hops.p99, 0)) max \(c.hops.max), \(f(c.connections_per_node, 1)) connections/node (\(c.connections_by_local_type.sorted { $0.key < $1.key }.map { "\($0.key) \(f($0.value, 1))" }.joined(separator: ", "))); \(c.connections_relayed) of \(c.connections_direct + c.connections_relayed) connections relayed (\(f(c.relayed_share * 100, 1))%, \(c.needless_relays) needless)")
            if c.messages_delivered < c.messages_sent, !c.drops_while_routing.isEmpty {
                lines.append("    dropped while routing: " + c.drops_while_routing.nameCounts)
            }
            if let lost = c.lost_messages, !lost.isEmpty {
                lines.append("    lost: " + lost.joined(separator: ", "))
            }
        }
        if let s = r.shortcut_s {
            lines.append("  first packet -> shortcut (s): p50 \(f(s.p50))  p90 \(f(s.p90))  p99 \(f(s.p99))  max \(f(s.max))  (\(s.count) of \(r.flows) flows)")
        }
        if let n = r.name_lookups {
            lines.append("  name lookups (s): p50 \(f(n.seconds.p50))  p90 \(f(n.seconds.p90))  p99 \(f(n.seconds.p99))  max \(f(n.seconds.max))  (\(n.correct) right of \(n.found) found, \(n.asked) asked)")
        }
        if r.churn_left + r.churn_joined > 0 { lines.append("  churn: \(r.churn_left) left, \(r.churn_joined) joined") }
        lines.append("  idle upkeep: \(f(r.idle_bytes_per_s_per_connection, 2)) bytes/s per connection")
        lines.append("  \(r.packets_sent) packets, \(r.events) events, \(f(r.virtual_s, 1)) s virtual in \(f(r.wall_s, 1)) s wall")
        return lines.joined(separator: "\n")
    }
}
