import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
@testable import Transports
import WOWKit
import XCTest

/// The `tls` transport over loopback; the harness (`StreamTransportTestCase`, `StreamTestWorld`) is the tcp
/// tests'.
final class TLSTransportTests: StreamTransportTestCase {
    override var scheme: String { "tls" }

    /// A started tls listener on 127.0.0.1 with an ephemeral port; returns its index.
    @discardableResult
    private func addListener(_ settings: TLSTransport.Settings = TLSTransport.Settings(listen: "127.0.0.1:0")) throws -> Int {
        try onLoop { world in
            let listener = try TLSTransport.makeListener(settings: settings, context: world.context)
            return try world.add(try XCTUnwrap(listener as? TCPEdgeListener))
        }
    }

    /// Connects listener 0 to listener 1 and exchanges a packet each way.
    private func exchangePackets() throws {
        let request = try onLoop { world in world.connect(0, to: try world.uri(1)) }
        try waitUntil("the edge is up at both ends") { world in
            world.edge(request) != nil && world.recorders[1].accepted.count == 1
        }
        try onLoop { world in
            let outbound = try XCTUnwrap(world.edge(request))
            XCTAssertEqual(outbound.transport, "tls")
            XCTAssertEqual(world.recorders[1].accepted[0].remoteURI.scheme, "tls")
            outbound.send(ByteBuffer(string: "over tls"))
            outbound.send(ByteBuffer(repeating: 9, count: 65_535))
        }
        try waitUntil("the packets arrive") { $0.recorders[1].received.count == 2 }
        try onLoop { world in
            XCTAssertEqual(world.recorders[1].received.map(\.payload), ["over tls", ""])
            XCTAssertEqual(world.recorders[1].received.map(\.size), [8, 65_535])
            world.recorders[1].accepted[0].send(ByteBuffer(string: "and back"))
        }
        try waitUntil("the reply arrives") { $0.recorders[0].received.count == 1 }
        try onLoop { world in
            XCTAssertEqual(world.recorders[0].received.map(\.payload), ["and back"])
            XCTAssertEqual(world.listeners[0].tlsFailures + world.listeners[1].tlsFailures, 0)
        }
    }

    func testTwoListenersExchangePacketsWithGeneratedCertificates() throws {
        try addListener()
        try addListener()
        try exchangePackets()
    }

    func testCertificateAndKeyFilesAreUsed() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("wow-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let made = try TLSSelfSignedCertificate(commonName: "file node")
        let other = try TLSSelfSignedCertificate(commonName: "other node")
        let certificateFile = directory.appendingPathComponent("node.crt").path
        let keyFile = directory.appendingPathComponent("node.key").path
        let otherKeyFile = directory.appendingPathComponent("other.key").path
        try made.certificatePEM.write(toFile: certificateFile, atomically: true, encoding: .utf8)
        try made.privateKeyPEM.write(toFile: keyFile, atomically: true, encoding: .utf8)
        try other.privateKeyPEM.write(toFile: otherKeyFile, atomically: true, encoding: .utf8)

        try addListener(TLSTransport.Settings(listen: "127.0.0.1:0", certificateFile: certificateFile, keyFile: keyFile))
        try addListener()
        try exchangePackets()

        let missing = directory.appendingPathComponent("missing.crt").path
        XCTAssertThrowsError(try TLSTransport.security(TLSTransport.Settings(certificateFile: missing, keyFile: keyFile))) { error in
            guard case .badCertificateFile(let file, _) = error as? TLSTransportError else { return XCTFail("\(error)") }
            XCTAssertEqual(file, missing)
        }
        XCTAssertThrowsError(try TLSTransport.security(TLSTransport.Settings(certificateFile: certificateFile, keyFile: missing))) { error in
            guard case .badKeyFile(let file, _) = error as? TLSTransportError else { return XCTFail("\(error)") }
            XCTAssertEqual(file, missing)
        }
        XCTAssertThrowsError(try TLSTransport.security(TLSTransport.Settings(certificateFile: certificateFile, keyFile: otherKeyFile))) { error in
            guard case .badCredentials = error as? TLSTransportError else { return XCTFail("\(error)") }
        }
    }

    func testPlainTCPClientDeliversNothing() throws {
        try addListener()
        let port = try onLoop { try XCTUnwrap($0.listeners[0].port) }
        let client = try rawClient(port: port)
        // A well-formed frame, but not TLS: the handshake fails and the connection closes.
        try client.writeAndFlush(ByteBuffer(bytes: [0x00, 0x05] + Array("hello".utf8))).wait()
        XCTAssertNoThrow(try client.closeFuture.wait(), "the listener closes the connection")
        try waitUntil("the failure is counted") { $0.listeners[0].tlsFailures == 1 }
        try settle()
        try onLoop { world in
            XCTAssertEqual(world.recorders[0].accepted.count, 0, "no edge for a peer that fails the handshake")
            XCTAssertEqual(world.recorders[0].received.count, 0)
            XCTAssertEqual(world.listeners[0].packetsReceived, 0)
        }
    }

    func testSilentPlainClientIsDroppedAfterTheHandshakeTimeout() throws {
        try addListener(TLSTransport.Settings(listen: "127.0.0.1:0", connectTimeoutMilliseconds: 200))
        let port = try onLoop { try XCTUnwrap($0.listeners[0].port) }
        let client = try rawClient(port: port)
        XCTAssertNoThrow(try client.closeFuture.wait(), "the listener closes the connection")
        try onLoop { world in XCTAssertEqual(world.recorders[0].accepted.count, 0) }
    }

    /// Listener 1's inbound connections not yet up that hold a TLS handler.
    private static func holdingTLSState(_ world: StreamTestWorld) -> Int {
        world.listeners[1].pendingInboundChannels.filter { channel in
            (try? channel.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self)) != nil
        }.count
    }

    /// A connection that has not spoken holds no TLS state (BoringSSL's connection and NIOSSL's buffers, ~50 KB):
    /// a flood of silent connections costs sockets only. Its first bytes bring the handshake, and a real peer
    /// still links meanwhile.
    func testSilentConnectionsHoldNoTLSStateUntilTheyFirstSpeak() throws {
        try addListener()
        try addListener()
        let port = try onLoop { try XCTUnwrap($0.listeners[1].port) }
        let silent = try (0..<3).map { _ in try rawClient(port: port) }
        try waitUntil("the listener holds the silent connections") { $0.listeners[1].pendingInboundChannels.count == 3 }
        try onLoop { world in XCTAssertEqual(Self.holdingTLSState(world), 0, "silent connections hold no TLS handler") }
        try exchangePackets()
        try onLoop { world in XCTAssertEqual(world.listeners[1].pendingInboundChannels.count, 3) }
        // The first bytes of one (not TLS) bring its handshake, which fails and closes it; the others stay silent.
        try silent[0].writeAndFlush(ByteBuffer(bytes: [0x16, 0x03, 0x01, 0x00, 0x05] + Array("hello".utf8))).wait()
        XCTAssertNoThrow(try silent[0].closeFuture.wait(), "the listener closes the connection")
        try waitUntil("the failed handshake is counted") { $0.listeners[1].tlsFailures == 1 }
        try onLoop { world in
            XCTAssertEqual(world.listeners[1].pendingInboundChannels.count, 2)
            XCTAssertEqual(Self.holdingTLSState(world), 0)
        }
        for client in silent.dropFirst() { try client.close().wait() }
    }

    func testTLSToAPlainTCPListenerIsUnreachable() throws {
        try addListener(TLSTransport.Settings(listen: "127.0.0.1:0", connectTimeoutMilliseconds: 300))
        let plainPort = try onLoop { world in
            let plain = try TCPEdgeListener(settings: TCPTransport.Settings(listen: "127.0.0.1:0"), eventLoop: world.loop,
                                            logger: quietLogger("wow.tcp.test"))
            let index = try world.add(plain)
            return try XCTUnwrap(world.listeners[index].port)
        }
        let uri = try TransportURI("tls://127.0.0.1:\(plainPort)")
        let request = try onLoop { $0.connect(0, to: uri) }
        try waitUntil("the attempt fails") { $0.results[request] != nil }
        try onLoop { world in
            guard case .unreachable(let failed, _) = world.error(request) else {
                return XCTFail("expected unreachable, got \(String(describing: world.results[request]))")
            }
            XCTAssertEqual(failed, uri)
            XCTAssertEqual(world.listeners[0].edgeCount, 0)
        }
    }

    func testSettings() throws {
        let defaults = try PluginSettings.empty.decode(TLSTransport.Settings.self, for: "tls")
        XCTAssertEqual(defaults.listen, "0.0.0.0:443")
        XCTAssertEqual(defaults.connectTimeoutMilliseconds, 5000)
        XCTAssertNil(defaults.certificateFile)
        XCTAssertNil(defaults.keyFile)

        let given = try PluginSettings(yaml: """
            listen: "127.0.0.1:8443"
            advertise: ["tls://198.18.0.1:443"]
            certificate_file: /etc/wow/tls.crt
            key_file: /etc/wow/tls.key
            """).decode(TLSTransport.Settings.self, for: "tls")
        XCTAssertEqual(given.listen, "127.0.0.1:8443")
        XCTAssertEqual(given.advertise, [try TransportURI("tls://198.18.0.1:443")])
        XCTAssertEqual(given.certificateFile, "/etc/wow/tls.crt")
        XCTAssertEqual(given.keyFile, "/etc/wow/tls.key")

        func reason(_ yaml: String) -> String {
            do {
                _ = try PluginSettings(yaml: yaml).decode(TLSTransport.Settings.self, for: "tls")
                return "no error"
            } catch {
                return "\(error)"
            }
        }
        let onlyCertificate = reason("certificate_file: /etc/wow/tls.crt")
        XCTAssertTrue(onlyCertificate.contains("certificate_file") && onlyCertificate.contains("key_file"), onlyCertificate)
        XCTAssertTrue(reason("key_file: /etc/wow/tls.key").contains("key_file"))
        XCTAssertTrue(reason("cert: x").contains("unknown key 'cert'"))
        XCTAssertTrue(reason("listen: my.host:443").contains("listen"))
        XCTAssertTrue(reason("advertise: [\"tcp://1.2.3.4:443\"]").contains("advertise"))

        let simulator = TransportContext(scheduler: SimulationScheduler(), random: SeededRandom(seed: 1),
                                         logger: quietLogger("wow.tls.test"))
        XCTAssertThrowsError(try TLSTransport.makeListener(settings: defaults, context: simulator)) { error in
            XCTAssertEqual(error as? TCPTransportError, .needsEventLoop(transport: "tls"))
        }
        try onLoop { world in
            let listener = try TLSTransport.makeListener(settings: defaults, context: world.context)
            XCTAssertEqual(listener.scheme, "tls")
        }
    }
}
