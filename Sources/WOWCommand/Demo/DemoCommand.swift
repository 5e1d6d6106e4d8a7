import ArgumentParser
import Foundation
import NIOCore

/// `wow demo`: a real overlay of N nodes in this process, over udp, tcp and tls on loopback.
struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run a real overlay on this machine: N nodes over udp, tcp and tls on loopback join, form a shortcut, route pings.",
        discussion: """
            Starts N nodes in this process, each a member of a fresh network (certificates, encrypted edges),
            over real sockets on 127.0.0.1 (ephemeral ports; no root): a quarter speak udp and tcp, a quarter tcp
            and tls, a quarter udp and tls, a quarter all three, so each transport carries the pairs that share
            only it. They join one per --join-interval-ms through a random node already running;
            once the ring is consistent, two nodes that are not directly connected exchange 10 packets a
            second each way until a structured.shortcut connection joins them (their packets then take one
            hop); then random pairs exchange pings through the overlay (sealed end to end when the two are not
            directly connected). Prints join times, the time to the shortcut, hop counts, round trips and the
            connections by type and transport. Exit status 0 when every node joined, the shortcut formed and
            every ping was answered within --timeout; 2 otherwise, with the reason.

            With --web, a page draws the whole overlay live as it forms (every node on the ring, every link by
            type, the shortcut appearing) and stays up after the run until Ctrl-C.
            """
    )

    @Option(help: "Number of nodes (2-200).")
    var nodes = 16

    @Option(help: "Pings sent between random pairs once the ring is consistent (0-10000).")
    var messages = 100

    @Option(help: "Milliseconds between two nodes starting (0-10000).")
    var joinIntervalMs = 100.0

    @Option(help: "Seconds allowed for the ring to become consistent, again for the pings' answers, and for the shortcut.")
    var timeout = 30.0

    @OptionGroup var output: ReportOutput

    @OptionGroup var webOptions: WebOptions

    func validate() throws {
        _ = try options()
        _ = try webOptions.address()
    }

    // A demo runs on the wall clock, so its limits keep a run within minutes.
    static let nodeRange = OptionRange("--nodes", 2...200, "nodes")
    static let messageRange = OptionRange("--messages", 0...10_000, "pings")
    static let joinIntervalRange = OptionRange("--join-interval-ms", 0...10_000.0, "milliseconds")
    static let timeoutRange = OptionRange("--timeout", 0...3600.0, "seconds", excludesLowerBound: true)

    func options() throws -> LocalDemo.Options {
        var options = LocalDemo.Options()
        options.nodes = try Self.nodeRange.check(nodes)
        options.messages = try Self.messageRange.check(messages)
        options.joinInterval = .microseconds(Int64(try Self.joinIntervalRange.check(joinIntervalMs) * 1000))
        options.timeout = try Self.timeoutRange.check(timeout)
        return options
    }

    func run() throws {
        let options = try options()
        if !output.json {
            print("WOW demo: \(options.nodes) nodes on 127.0.0.1 over udp, tcp and tls, one process, secured (a fresh network)")
        }
        let webAddress = try webOptions.address()
        let feed = webAddress.map { _ in OverlayFeed(mode: .overlay, title: "demo: \(options.nodes) nodes on 127.0.0.1") }
        let json = output.json
        var progress: ((String) -> Void)?
        if !json || feed != nil {
            progress = { line in
                feed?.note(line.trimmingCharacters(in: .whitespaces))
                if !json { print(line) }
            }
        }
        let demo = LocalDemo(options: options, progress: progress)
        if let feed, let webAddress {
            let view = WebViewOnOverlay()
            demo.overlayStarted = { overlay in
                do {
                    try view.start(feed: feed, address: webAddress, overlay: overlay, announce: json)
                } catch {
                    FileHandle.standardError.write(Data("wow demo: cannot serve the web view at \(webOptions.web ?? ""): \(error)\n".utf8))
                }
            }
            demo.overlayFinishing = { _ in
                guard view.isServing else { return }
                let line = "wow: the demo is over; the web view stays up until Ctrl-C"
                if json { FileHandle.standardError.write(Data((line + "\n").utf8)) } else { print(line) }
                fflush(nil)
                WebView.waitForInterrupt()
                view.stop()
            }
        }
        let report = demo.run()
        try output.print(report, humanReadable: Self.humanReadable)
        if let failure = report.failure {
            FileHandle.standardError.write(Data("wow demo: failed: \(failure)\n".utf8))
            throw ExitCode(2)
        }
    }

    /// The demo's web view: its sampler and server on the overlay's loop, while the overlay runs.
    private final class WebViewOnOverlay {
        private var sampler: RepeatedTask?
        private var channel: (any Channel)?
        var isServing: Bool { channel != nil }

        func start(feed: OverlayFeed, address: SocketAddress, overlay: LocalOverlay, announce toStandardError: Bool) throws {
            sampler = try WebView.sample(on: overlay.loop, feed: feed, publishesStatus: false) { overlay.nodesOnLoop() }
            let channel = try WebView.serve(feed, at: address, on: overlay.loop)
            self.channel = channel
            let line = WebView.announcement(channel)
            if toStandardError { FileHandle.standardError.write(Data((line + "\n").utf8)) } else { print(line) }
            fflush(nil)
        }

        func stop() {
            sampler?.cancel()
            try? channel?.close().wait()
        }
    }

    static func humanReadable(_ r: DemoReport) -> String {
        func f(_ v: Double, _ digits: Int = 3) -> String { String(format: "%.\(digits)f", v) }
        func counts(_ d: [String: Int]) -> String {
            d.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.map { "\($0.key) \($0.value)" }
                .joined(separator: ", ")
        }
        let roles = Dictionary(grouping: r.node_list, by: { $0.transports.joined(separator: "+") }).mapValues(\.count)
        var lines: [String] = ["", "Summary"]
        lines.append("  nodes               \(r.node_list.count) (\(counts(roles)))")
        lines.append("  ring consistent     " + (r.ring_formed_s.map { "yes, after \(f($0, 2)) s" } ?? "NO"))
        let j = r.join_routable_s
        lines.append("  join -> routable    p50 \(f(j.p50)) s  p90 \(f(j.p90)) s  max \(f(j.max)) s  (\(j.count) nodes)")
        if let s = r.shortcut {
            let pair = s.pair.joined(separator: " <-> ")
            if let formed = s.formed_s {
                lines.append("  shortcut            \(pair): formed \(f(formed)) s after the first packet; hops max \(s.hops_before.max) before, "
                             + (s.hops_after.histogram.isEmpty ? "none delivered after" : "max \(s.hops_after.max) after"))
            } else {
                lines.append("  shortcut            \(pair): NOT formed")
            }
        }
        lines.append("  pings delivered     \(r.messages_delivered)/\(r.messages_sent) (answered; both directions counted below)")
        if r.messages_delivered > 0 {
            let histogram = r.hops.histogram.sorted { Int($0.key) ?? 0 < Int($1.key) ?? 0 }.map { "\($0.key):\($0.value)" }
                .joined(separator: " ")
            lines.append("  hops                mean \(f(r.hops.mean, 2))  p50 \(f(r.hops.p50, 0))  max \(r.hops.max)  [\(histogram)]")
            lines.append("  round trip (ms)     p50 \(f(r.rtt_ms.p50, 2))  p90 \(f(r.rtt_ms.p90, 2))  max \(f(r.rtt_ms.max, 2))")
        }
        lines.append("  connections         \(r.connections)")
        lines.append("    by transport      \(counts(r.connections_by_transport))")
        lines.append("    by type           \(counts(r.connections_by_type))")
        if !r.node_drops.isEmpty { lines.append("  packets dropped     \(counts(r.node_drops))") }
        lines.append("  wall time           \(f(r.wall_s, 2)) s")
        lines.append(r.ok ? "OK" : "FAILED: \(r.failure ?? "")")
        return lines.joined(separator: "\n")
    }
}
