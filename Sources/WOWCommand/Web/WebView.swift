import ArgumentParser
import Foundation
import NIOCore
import Transports
import WOWKit
import WOWSimulator

/// `--web ADDRESS:PORT`, shared by `wow run`, `wow demo` and `wow sim`: where the web view listens.
struct WebOptions: ParsableArguments {
    @Option(name: .customLong("web"),
            help: "Serve a live web view at http://ADDRESS:PORT/ (read-only; e.g. 127.0.0.1:8080, or a bare PORT for 127.0.0.1). A non-loopback address exposes it to that network.")
    var web: String?

    /// `--web` parsed; nil without it. Any address the option names is taken (the operator chose it); a bare
    /// port means loopback.
    func address() throws -> SocketAddress? {
        guard let web else { return nil }
        var literal = web
        if UInt16(web) != nil { literal = "127.0.0.1:" + web }
        // `localhost` is the one host name taken: loopback on every host, so no DNS lookup.
        if literal.hasPrefix("localhost:") { literal = "127.0.0.1" + literal.dropFirst("localhost".count) }
        do {
            return try IPEndpoint(parsing: literal).address
        } catch {
            throw ValidationError("--web '\(web)': give ADDRESS:PORT (e.g. 127.0.0.1:8080, [::1]:8080) or a PORT (\(error.reason))")
        }
    }
}

/// The web view: a page that draws an overlay's ring, nodes and links from an `OverlayFeed`, served by the
/// `ReadOnlyHTTPServer`. Routes: `/` (the page), `/view.js`, `/view.css` (its script and style, built into the
/// binary), `/events` (the feed as server-sent events).
enum WebView {
    static func routes(_ feed: OverlayFeed) -> [String: ReadOnlyHTTPServer.Route] {
        func asset(_ type: String, _ text: String) -> ReadOnlyHTTPServer.Route {
            let body = Array(text.utf8)
            return .document { .init(contentType: type, body: body) }
        }
        return [
            "/": asset("text/html; charset=utf-8", WebPage.html),
            "/view.js": asset("text/javascript; charset=utf-8", WebPage.script),
            "/view.css": asset("text/css; charset=utf-8", WebPage.style),
            "/events": .events(feed),
        ]
    }

    /// Binds the view of `feed` at `address` on `loop`.
    static func serve(_ feed: OverlayFeed, at address: SocketAddress, on loop: any EventLoop) throws -> any Channel {
        try ReadOnlyHTTPServer.bind(address, on: loop, routes: routes(feed))
    }

    /// The page's URL, for the start-up line.
    static func url(_ channel: any Channel) -> String {
        guard let address = channel.localAddress, let ip = address.ipAddress, let port = address.port else { return "?" }
        return "http://\(ip.contains(":") ? "[\(ip)]" : ip):\(port)/"
    }

    /// Blocks the calling thread until SIGINT or SIGTERM: `wow demo --web` and `wow sim --web` keep their view
    /// up after the run, for the viewer, until interrupted.
    static func waitForInterrupt() {
        signal(SIGINT, SIG_IGN)
        signal(SIGTERM, SIG_IGN)
        let interrupted = DispatchSemaphore(value: 0)
        let sources = [SIGINT, SIGTERM].map { number in
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { interrupted.signal() }
            source.resume()
            return source
        }
        interrupted.wait()
        for source in sources { source.cancel() }
    }

    /// The start-up line, with a warning when the view is reachable beyond this machine.
    static func announcement(_ channel: any Channel) -> String {
        var line = "wow: web view at \(url(channel))"
        if channel.localAddress?.isLoopback == false {
            line += " (NOT loopback: anyone who can reach this address sees the overlay's nodes and links)"
        }
        return line
    }

    /// Shows `recorder` the nodes `nodes` lists (with whether each is live and how it is reached) every
    /// `interval` on `loop`, the loop that runs them; with `statusOf`, also publishes the first node's status.
    /// For the live views (`wow demo`, `wow run`); the simulator shows its recorder each table change instead.
    static func sample(on loop: any EventLoop, every interval: TimeAmount = .milliseconds(200), feed: OverlayFeed,
                       publishesStatus: Bool,
                       nodes: @escaping @Sendable () -> [(node: Node, isLive: Bool)]) throws -> RepeatedTask {
        let recorder = try loop.submit {
            NIOLoopBound(OverlayRecorder(emit: { feed.append($0) }), eventLoop: loop)
        }.wait()
        return loop.scheduleRepeatedTask(initialDelay: .zero, delay: interval) { _ in
            let seconds = feed.secondsSinceStart
            let recorder = recorder.value
            let all = nodes()
            for (node, isLive) in all {
                let known = recorder.isKnown(node.address)
                if isLive && !known {
                    let schemes = node.info.uris.map(\.scheme).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
                    recorder.joined(node.address, name: node.config.name, detail: schemes.joined(separator: "+"), at: seconds)
                }
                if isLive {
                    recorder.observe(node, at: seconds)
                } else if known {
                    recorder.left(node.address, at: seconds)
                }
            }
            if publishesStatus, let first = all.first, let json = try? JSONEncoder().encode(first.node.status()) {
                feed.setStatus(String(decoding: json, as: UTF8.self))
            }
        }
    }
}
