import Foundation
import NIOCore
import NIOPosix
@testable import Transports
import WOWKit
import XCTest

/// Stream edges dialed through an HTTP proxy (`FakeHTTPProxy`, in process on 127.0.0.1): a tls edge opens
/// through the tunnel and carries packets; credentials are sent; a proxy that refuses, answers garbage, closes
/// or says nothing makes the edge unreachable with a reason naming the proxy (and the status).
final class ProxyDialingTests: StreamTransportTestCase {
    override var scheme: String { "tls" }

    private var proxies: [NIOLoopBound<FakeHTTPProxy>] = []

    override func tearDownWithError() throws {
        let proxies = self.proxies
        try? loop.submit { for proxy in proxies { proxy.value.stop() } }.wait()
        try super.tearDownWithError()
    }

    private func startProxy(_ behaviour: FakeHTTPProxy.Behaviour) throws -> (proxy: NIOLoopBound<FakeHTTPProxy>, port: Int) {
        let proxy = try FakeHTTPProxy.start(on: loop, behaviour: behaviour)
        proxies.append(proxy)
        let port = try loop.submit { proxy.value.port }.wait()
        return (proxy, port)
    }

    /// A started listener of `scheme` on 127.0.0.1 dialing through `proxy` (nil: directly); its index.
    @discardableResult
    private func addListener(scheme: String = "tls", proxy: ProxySetting = .direct, connectTimeoutMilliseconds: Int = 5000) throws -> Int {
        try onLoop { world in
            let listener: any EdgeListener
            if scheme == "tls" {
                listener = try TLSTransport.makeListener(
                    settings: TLSTransport.Settings(listen: "127.0.0.1:0", connectTimeoutMilliseconds: connectTimeoutMilliseconds,
                                                    proxy: proxy),
                    context: world.context, environment: [:])
            } else {
                listener = try TCPTransport.makeListener(
                    settings: TCPTransport.Settings(listen: "127.0.0.1:0", connectTimeoutMilliseconds: connectTimeoutMilliseconds,
                                                    proxy: proxy),
                    context: world.context)
            }
            return try world.add(try XCTUnwrap(listener as? TCPEdgeListener))
        }
    }

    /// Asks listener 0 for an edge to listener 1 and waits for the outcome; returns the request number.
    private func dialZeroToOne(scheme: String = "tls") throws -> Int {
        let request = try onLoop { world in
            world.connect(0, to: try TransportURI("\(scheme)://127.0.0.1:\(try XCTUnwrap(world.listeners[1].port))"))
        }
        try waitUntil("the attempt ends") { $0.results[request] != nil }
        return request
    }

    /// The reason of a failed attempt (fails the test if it did not fail as unreachable).
    private func unreachableReason(_ request: Int, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        try onLoop { world in
            guard case .unreachable(_, let reason) = world.error(request) else {
                XCTFail("expected unreachable, got \(String(describing: world.results[request]))", file: file, line: line)
                return ""
            }
            return reason
        }
    }

    // MARK: Tunnels

    func testTLSEdgeOpensThroughAProxyAndCarriesPackets() throws {
        let (proxy, proxyPort) = try startProxy(.tunnel)
        try addListener(proxy: .http(HTTPProxy(host: "127.0.0.1", port: proxyPort)))
        try addListener()
        let request = try dialZeroToOne()
        try waitUntil("the peer has the edge") { $0.recorders[1].accepted.count == 1 }
        let peerPort = try onLoop { try XCTUnwrap($0.listeners[1].port) }
        try onLoop { world in
            let edge = try XCTUnwrap(world.edge(request), "\(String(describing: world.results[request]))")
            XCTAssertEqual(edge.remoteURI, try TransportURI("tls://127.0.0.1:\(peerPort)"), "the edge names the peer, not the proxy")
            XCTAssertEqual(world.listeners[0].connectionsProxied, 1)
            XCTAssertEqual(proxy.value.requests, ["CONNECT 127.0.0.1:\(peerPort) HTTP/1.1\r\nHost: 127.0.0.1:\(peerPort)"])
            edge.send(ByteBuffer(string: "through the proxy"))
            edge.send(ByteBuffer(repeating: 7, count: 65_535))
        }
        try waitUntil("the packets arrive") { $0.recorders[1].received.count == 2 }
        try onLoop { world in
            XCTAssertEqual(world.recorders[1].received.map(\.payload), ["through the proxy", ""])
            XCTAssertEqual(world.recorders[1].received.map(\.size), [17, 65_535])
            world.recorders[1].accepted[0].send(ByteBuffer(string: "and back"))
        }
        try waitUntil("the reply arrives") { $0.recorders[0].received.count == 1 }
        try onLoop { world in
            XCTAssertEqual(world.recorders[0].received.map(\.payload), ["and back"])
            XCTAssertEqual(world.listeners[0].tlsFailures + world.listeners[1].tlsFailures, 0)
            XCTAssertEqual(world.listeners[0].proxyFailures, 0)
        }
    }

    func testCredentialsAreSentAsBasicProxyAuthorization() throws {
        // "alice:s3cret:x" in base64.
        let (_, proxyPort) = try startProxy(.requireAuthorization("Basic YWxpY2U6czNjcmV0Ong="))
        try addListener(proxy: ProxySetting(parsing: "http://alice:s3cret%3Ax@127.0.0.1:\(proxyPort)"))
        try addListener()
        let request = try dialZeroToOne()
        try onLoop { world in XCTAssertNotNil(world.edge(request), "\(String(describing: world.results[request]))") }
    }

    /// A plain tcp edge too waits for the tunnel (the connection is not "up" at the TCP connect), and bytes that
    /// come in the same read as the proxy's answer reach the edge.
    func testTCPEdgeOpensThroughAProxyAndKeepsBytesAfterTheAnswer() throws {
        // A framed packet "hi" right behind the 200, as if the peer had spoken at once.
        let (proxy, proxyPort) = try startProxy(.tunnelWithGreeting([0x00, 0x02] + Array("hi".utf8)))
        try addListener(scheme: "tcp", proxy: .http(HTTPProxy(host: "127.0.0.1", port: proxyPort)))
        try addListener(scheme: "tcp")
        let request = try dialZeroToOne(scheme: "tcp")
        try waitUntil("the greeting arrives") { $0.recorders[0].received.count == 1 }
        try onLoop { world in
            XCTAssertEqual(world.recorders[0].received.map(\.payload), ["hi"])
            XCTAssertEqual(proxy.value.requests.count, 1)
            try XCTUnwrap(world.edge(request)).send(ByteBuffer(string: "plain"))
        }
        try waitUntil("the packet arrives") { $0.recorders[1].received.count == 1 }
        try onLoop { world in XCTAssertEqual(world.recorders[1].received.map(\.payload), ["plain"]) }
    }

    // MARK: Refusals

    func testProxyAuthenticationRequiredFailsNamingTheProxyAndTheStatus() throws {
        let (_, proxyPort) = try startProxy(.requireAuthorization("Basic c29tZW9uZTplbHNl"))
        try addListener(proxy: .http(HTTPProxy(host: "127.0.0.1", port: proxyPort)))
        try addListener()
        let request = try dialZeroToOne()
        let peerPort = try onLoop { try XCTUnwrap($0.listeners[1].port) }
        let reason = try unreachableReason(request)
        XCTAssertTrue(reason.hasPrefix(
            "proxy 127.0.0.1:\(proxyPort) refused CONNECT to 127.0.0.1:\(peerPort): 407 Proxy Authentication Required"), reason)
        XCTAssertTrue(reason.contains("user and password"), reason)
        try settle()
        try onLoop { world in
            XCTAssertEqual(world.listeners[0].proxyFailures, 1)
            XCTAssertEqual(world.listeners[0].edgeCount, 0)
            XCTAssertEqual(world.recorders[1].accepted.count, 0, "nothing reached the peer")
        }
    }

    func testForbiddenGarbageEarlyCloseAndSilenceAreUnreachable() throws {
        let (proxy, proxyPort) = try startProxy(.answer("HTTP/1.1 403 Forbidden\r\nContent-Length: 4\r\n\r\nnope"))
        try addListener(proxy: .http(HTTPProxy(host: "127.0.0.1", port: proxyPort)), connectTimeoutMilliseconds: 500)
        try addListener()
        let target = try onLoop { "127.0.0.1:\(try XCTUnwrap($0.listeners[1].port))" }

        var reason = try unreachableReason(try dialZeroToOne())
        XCTAssertTrue(reason.hasPrefix("proxy 127.0.0.1:\(proxyPort) refused CONNECT to \(target): 403 Forbidden"), reason)

        try onLoop { _ in proxy.value.behaviour = .answer("SSH-2.0-OpenSSH_9.2\r\n") }
        reason = try unreachableReason(try dialZeroToOne())
        XCTAssertTrue(reason.hasPrefix("proxy 127.0.0.1:\(proxyPort) gave a bad answer to CONNECT to \(target): not an HTTP response"), reason)

        // The status line came, then the proxy hung up in the middle of the header: still its refusal.
        try onLoop { _ in proxy.value.behaviour = .answer("HTTP/1.0 502 Bad Gateway\r\nServer: x") }
        reason = try unreachableReason(try dialZeroToOne())
        XCTAssertTrue(reason.hasPrefix("proxy 127.0.0.1:\(proxyPort) refused CONNECT to \(target): 502 Bad Gateway"), reason)

        try onLoop { _ in proxy.value.behaviour = .closeAtOnce }
        reason = try unreachableReason(try dialZeroToOne())
        XCTAssertEqual(reason, "proxy 127.0.0.1:\(proxyPort) closed the connection before answering CONNECT to \(target)")

        try onLoop { _ in proxy.value.behaviour = .silent }
        reason = try unreachableReason(try dialZeroToOne())
        XCTAssertEqual(reason, "timed out after 500 ms through proxy 127.0.0.1:\(proxyPort)")

        try onLoop { world in
            XCTAssertEqual(world.listeners[0].proxyFailures, 4, "refused, garbage, refused mid-header, closed")
            XCTAssertEqual(world.listeners[0].edgeCount, 0)
            XCTAssertEqual(world.recorders[1].accepted.count, 0)
        }
    }

    func testUnreachableProxyIsNamed() throws {
        let port = try freePort()
        try addListener(proxy: .http(HTTPProxy(host: "127.0.0.1", port: port)))
        try addListener()
        let reason = try unreachableReason(try dialZeroToOne())
        XCTAssertEqual(reason, "proxy 127.0.0.1:\(port): connection refused")
    }
}
