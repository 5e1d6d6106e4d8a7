import ArgumentParser
import Foundation
import NIOCore
import NIOPosix
import WOWKit
import WOWSimulator
import XCTest

@testable import WOWCommand

/// The web view (`--web`): its read-only server, its event stream, the simulator's recorder behind it, and the
/// page itself in a real browser (headless Chromium from Debian; skipped without it, except under CI).
final class WebViewTests: XCTestCase {
    // MARK: The address

    func testWebAddressDefaultsToLoopbackAndTakesWhatItNames() throws {
        func parse(_ text: String) throws -> SocketAddress? {
            try WebOptions.parse(["--web", text]).address()
        }
        XCTAssertEqual(try parse("8080")?.ipAddress, "127.0.0.1")
        XCTAssertEqual(try parse("8080")?.port, 8080)
        XCTAssertEqual(try parse("localhost:0")?.ipAddress, "127.0.0.1")
        XCTAssertEqual(try parse("[::1]:8080")?.ipAddress, "::1")
        // Another address only because the option names it.
        XCTAssertEqual(try parse("198.18.0.1:8080")?.ipAddress, "198.18.0.1")
        XCTAssertThrowsError(try parse("example.org:80"))
        XCTAssertNil(try WebOptions.parse([]).address())
    }

    func testOnlyLoopbackHostNamesPass() {
        for host in ["localhost", "localhost:8080", "127.0.0.1", "127.0.0.1:9", "127.1.2.3:80", "[::1]:8080", "[::1]"] {
            XCTAssertTrue(ReadOnlyHTTPServer.isLoopbackHost(host), host)
        }
        for host in ["example.org", "evil.example:8080", "127.0.0.1.evil.example", "198.18.0.1:8080", "[::2]:80", ""] {
            XCTAssertFalse(ReadOnlyHTTPServer.isLoopbackHost(host), host)
        }
    }

    // MARK: The server

    /// Sends `request` to 127.0.0.1:`port` and returns what comes back within `wait` seconds.
    private func exchange(_ request: String, port: Int, wait: Double = 5) throws -> String {
        try LoopbackSocket.exchange(request, port: port, wait: wait)
    }

    private func withServedFeed(_ body: (OverlayFeed, Int) throws -> Void) throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let feed = OverlayFeed(mode: .overlay, title: "test")
        let channel = try WebView.serve(feed, at: try SocketAddress(ipAddress: "127.0.0.1", port: 0), on: group.next())
        defer { try? channel.close().wait() }
        try body(feed, try XCTUnwrap(channel.localAddress?.port))
    }

    func testTheServerServesThePageAndRefusesAnythingButReading() throws {
        try withServedFeed { _, port in
            let page = try exchange("GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", port: port)
            XCTAssertTrue(page.hasPrefix("HTTP/1.0 200 OK"), page)
            XCTAssertTrue(page.contains("<canvas id=\"ring\""), page)
            XCTAssertTrue(page.lowercased().contains("content-security-policy: default-src 'self'"), page)
            for asset in ["/view.js", "/view.css"] {
                XCTAssertTrue(try exchange("GET \(asset) HTTP/1.0\r\nHost: localhost\r\n\r\n", port: port).hasPrefix("HTTP/1.0 200 OK"))
            }
            for method in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"] {
                let refused = try exchange("\(method) / HTTP/1.0\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n", port: port)
                XCTAssertTrue(refused.hasPrefix("HTTP/1.0 405 Method Not Allowed"), "\(method): \(refused)")
            }
            XCTAssertTrue(try exchange("GET /etc/passwd HTTP/1.0\r\nHost: localhost\r\n\r\n", port: port)
                .hasPrefix("HTTP/1.0 404 Not Found"))
            // A page elsewhere that rebinds its DNS name to 127.0.0.1 still sends its own name.
            let rebound = try exchange("GET / HTTP/1.1\r\nHost: evil.example:\(port)\r\nConnection: close\r\n\r\n", port: port)
            XCTAssertTrue(rebound.hasPrefix("HTTP/1.1 403 Forbidden"), rebound)
        }
    }

    func testTheEventStreamSendsWhatTheFeedHoldsThenWhatItGains() throws {
        try withServedFeed { feed, port in
            let a = Address(hex: String(repeating: "1", count: 40))!
            let b = Address(hex: String(repeating: "8", count: 40))!
            feed.append(OverlayEvent(seconds: 0, node: a, kind: .joined(name: "n\"0", detail: "udp")))
            feed.append(OverlayEvent(seconds: 0.5, node: a, kind: .linked(peer: b, types: ["structured.near"], transport: "relay",
                                                                       via: b, pathSwitch: true)))
            let stream = try exchange("GET /events HTTP/1.1\r\nHost: localhost\r\n\r\n", port: port, wait: 1)
            XCTAssertTrue(stream.hasPrefix("HTTP/1.1 200 OK"), stream)
            XCTAssertTrue(stream.lowercased().contains("content-type: text/event-stream"), stream)
            XCTAssertTrue(stream.contains(#"event: hello"#) && stream.contains(#""mode":"overlay""#), stream)
            XCTAssertTrue(stream.contains(#"{"t":0.000,"n":"1111111111111111111111111111111111111111","k":"join","name":"n\"0","d":"udp"}"#), stream)
            XCTAssertTrue(stream.contains(#""k":"link","p":"8888888888888888888888888888888888888888","ty":["structured.near"],"tr":"relay","via":"8888888888888888888888888888888888888888","sw":true}"#), stream)
        }
    }

    // MARK: The simulator's event stream

    func testTheRecordedEventsAreTheRunTheCSVSummarises() throws {
        var options = SimulationOptions()
        options.nodes = 12
        options.messages = 20
        options.secure = false
        let simulation = try OverlaySimulation(options: options)
        var events: [OverlayEvent] = []
        simulation.recorder = OverlayRecorder { events.append($0) }
        let report = try simulation.run()
        XCTAssertTrue(report.ring_consistent)

        var joined: [Address: Double] = [:]
        var routable: [Address: Double] = [:]
        var links: [Address: Set<Address>] = [:]
        var types: Set<String> = []
        for event in events {
            switch event.kind {
            case .joined: joined[event.node!] = event.seconds
            case .routable: routable[event.node!] = event.seconds
            case .linked(let peer, let linkTypes, _, _, _):
                links[event.node!, default: []].insert(peer)
                types.formUnion(linkTypes)
            case .unlinked(let peer): links[event.node!]?.remove(peer)
            default: break
            }
        }
        XCTAssertEqual(joined.count, 12)
        XCTAssertEqual(zip(events, events.dropFirst()).filter { $0.seconds > $1.seconds }.count, 0, "events out of time order")
        for simulated in simulation.nodes {
            // The moments the CSV writes are the stream's.
            XCTAssertEqual(joined[simulated.node.address], simulated.startedAt.seconds)
            XCTAssertEqual(routable[simulated.node.address], simulated.routableAt?.seconds)
            // Replaying the stream gives each node's table at the end of the run.
            XCTAssertEqual(links[simulated.node.address] ?? [], Set(simulated.node.table.connections.map(\.address)))
        }
        XCTAssertTrue(types.isSuperset(of: ["leaf", "structured.near"]), "\(types)")
        XCTAssertTrue(events.contains { if case .note = $0.kind { return true } else { return false } })
    }

    // MARK: In a browser

    /// `wow demo --web` opened in headless Chromium: every node drawn, near, far and shortcut links drawn, a
    /// leaf link in the stream, the shortcut appearing after the demo's traffic starts, no console errors.
    func testTheDemoIsDrawnInABrowser() throws {
        let environment = ProcessInfo.processInfo.environment
        func unavailable(_ reason: String) throws -> Never {
            if environment["CI"] == "true" {
                XCTFail("the browser test cannot run under CI: \(reason) (.ci/run installs chromium)")
                throw XCTSkip("failed above: \(reason)")
            }
            throw XCTSkip("the browser test needs \(reason) (apt-get install chromium); CI=true makes this a failure")
        }
        let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]
            .first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let chromium else { try unavailable("Chromium at /usr/bin/chromium") }
        let python = ["/usr/bin/python3", "/usr/local/bin/python3"].first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let python else { try unavailable("python3 (it drives Chromium over the DevTools protocol)") }
        guard FileManager.default.isExecutableFile(atPath: WowExecutable.url.path) else {
            try unavailable("the wow executable, not built at \(WowExecutable.url.path)")
        }
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let screenshot = FileManager.default.temporaryDirectory.appendingPathComponent("wow-web-\(getpid()).png")
        defer { try? FileManager.default.removeItem(at: screenshot) }
        let (status, output) = try WowExecutable.run(URL(fileURLWithPath: python), [
            repository.appendingPathComponent("Scripts/web-view-check.py").path, "--wow", WowExecutable.url.path,
            "--chromium", chromium, "--screenshot", screenshot.path, "--timeout", "150", "demo", "--nodes", "16",
        ])
        XCTAssertEqual(status, 0, output)
        let start = try XCTUnwrap(output.firstIndex(of: "{"), output)
        let result = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(output[start...].utf8)) as? [String: Any], output)
        XCTAssertEqual(result["failures"] as? [String], [], output)
        let figures = try XCTUnwrap(result["figures"] as? [String: Any], output)
        XCTAssertEqual(figures["nodes"] as? Int, 16, output)
        XCTAssertEqual(result["console_errors"] as? [String], [], output)
        XCTAssertGreaterThan((try? Data(contentsOf: screenshot))?.count ?? 0, 10_000, "no screenshot")
    }
}
