import NIOCore
import WOWKit

/// Real messages for seeds: every edge message kind and routed payload, with plausible field values.
enum WireSamples {
    static let a = Address(high: 0x0123_4567_89AB_CDEF, middle: 0xFEDC_BA98_7654_3210, low: 0x0BAD_F00D)
    static let b = Address(high: 0x8000_0000_0000_0000, middle: 1, low: 2)
    static let c = Address(high: .max, middle: .max, low: .max)

    static func uri(_ text: String) -> TransportURI {
        do { return try TransportURI(text) } catch { fatalError("sample URI \(text): \(error)") }
    }

    static let alpha = NodeInfo(address: a, uris: [uri("udp://198.18.0.1:4000"), uri("tcp://198.18.0.1:4001"),
                                                   uri("tls://[2001:db8::1]:443")])
    static let beta = NodeInfo(address: b, uris: [uri("relay://0123456789abcdef0123456789abcdef01234567/89ab")])
    static let gamma = NodeInfo(address: c, uris: [])

    static let edgeMessages: [(String, EdgeMessage)] = [
        ("link-request", .linkRequest(LinkRequest(token: 42, type: "structured.near", requester: alpha, target: b,
                                                  observedURI: uri("udp://198.18.0.2:4000")))),
        ("link-request-bootstrap", .linkRequest(LinkRequest(token: .max, type: "leaf", requester: gamma, target: nil,
                                                            observedURI: uri("memory://1:1")))),
        ("link-reply", .linkReply(LinkReply(token: 42, responder: beta, observedURI: uri("udp://203.0.113.7:61000"),
                                            neighbours: [alpha, gamma]))),
        ("link-error", .linkError(LinkError(token: 7, code: .raceLost, message: "the other attempt wins"))),
        ("link-error-self", .linkError(LinkError(token: 8, code: .selfLink, message: ""))),
        ("ping", .ping(nonce: 0x0102_0304_0506_0708)),
        ("pong", .pong(nonce: 0)),
        ("close", .close(Close(reason: .notLinked, message: "no connection on this edge"))),
        ("close-utf8", .close(Close(reason: .trimmed, message: "überflüssig ✓"))),
        ("status", .status(Status(neighbours: [alpha, beta, gamma]))),
        ("status-empty", .status(Status(neighbours: []))),
    ] + routedPackets.map { ("routed-\($0.0)", EdgeMessage.routed($0.1)) }

    static func routed(_ type: PayloadType, _ payload: [UInt8], mode: DeliveryMode = .exact, hops: UInt8 = 0,
                       ttl: UInt8 = RoutedHeader.defaultTTL) -> RoutedPacket {
        RoutedPacket(header: RoutedHeader(hops: hops, ttl: ttl, mode: mode, payloadType: type, source: a, destination: b),
                     payload: ByteBuffer(bytes: payload))
    }

    static let routedPackets: [(String, RoutedPacket)] = [
        ("data", routed(.data, [0x45, 0, 0, 20] + [UInt8](repeating: 0, count: 16), hops: 3)),
        ("ctm", routed(.connectToMe, bytes(ConnectToMe(token: 9, type: "structured.near", requester: alpha,
                                                        gateway: c).encoded()), mode: .nearest)),
        ("ctm-no-gateway", routed(.connectToMe, bytes(ConnectToMe(token: 10, type: "structured.shortcut",
                                                                   requester: beta, gateway: nil).encoded()),
                                  mode: .left)),
        ("ctm-reply", routed(.connectToMeReply, bytes(ConnectToMeReply(token: 9, requester: a, type: "structured.near",
                                                                        responder: beta,
                                                                        neighbours: [alpha, gamma]).encoded()))),
        ("routing-error", routed(.routingError, bytes(RoutingError(code: .absentDestination, destination: b,
                                                                    payloadType: .data, reporter: c).encoded()),
                                 mode: .right)),
        ("tunnel-ping", routed(.tunnel, bytes(TunnelFrame(via: c, returnVia: a, frame: EdgeMessage.ping(nonce: 5)
                                                            .encoded()).encoded()))),
        ("tunnel-link-request", routed(.tunnel, bytes(TunnelFrame(via: .zero, returnVia: a, frame: EdgeMessage
            .linkRequest(LinkRequest(token: 1, type: "forwarder", requester: alpha, target: nil,
                                     observedURI: uri("relay://a/b"))).encoded()).encoded()))),
        ("tunnel-secure", routed(.tunnel, bytes(TunnelFrame(via: b, returnVia: a,
                                                             frame: ByteBuffer(bytes: [1, 0x24, 0, 0, 0, 7])).encoded()))),
        ("secure", routed(.secure, [1, 0x22] + [UInt8](repeating: 0xAB, count: 30))),
        ("echo-request", routed(.echoRequest, bytes(Echo(token: 77, sequence: 1).encoded()))),
        ("echo-reply", routed(.echoReply, bytes(Echo(token: 77, sequence: 1, requestHops: 4).encoded()), hops: 3)),
        ("name-put", routed(.namePut, bytes(NameMessage.put(NameRecord(credentials: FuzzFixtures.alice, at: FuzzFixtures.unixTime),
                                                            isReplica: false).encoded()), mode: .nearest)),
        ("name-get", routed(.nameGet, bytes(NameMessage.get(token: 5, name: "alice").encoded()), mode: .nearest)),
        ("name-answer", routed(.nameAnswer, bytes(NameMessage.answer(token: 5, record: NameRecord(credentials: FuzzFixtures.bob,
                                                                                                   at: FuzzFixtures.unixTime)).encoded()))),
        ("name-answer-none", routed(.nameAnswer, bytes(NameMessage.answer(token: 6, record: nil).encoded()))),
        ("unknown-type", routed(PayloadType(rawValue: 0x7F), [1, 2, 3], ttl: 1)),
    ]

    static func bytes(_ buffer: ByteBuffer) -> [UInt8] { Array(buffer.readableBytesView) }
}
