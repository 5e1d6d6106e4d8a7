import NIOCore
import XCTest

@testable import WOWKit

/// The wire format (docs/protocol.md): every message round-trips, the bytes match the documented layout,
/// and every malformed input yields its typed `WireError`, never a trap.
final class WireFormatTests: XCTestCase {

    // MARK: Round trips

    func testEveryEdgeMessageRoundTrips() {
        for message in Fixtures.edgeMessages {
            let encoded = message.encoded()
            XCTAssertEqual(decodeOrFail(encoded), message, "\(message)")
        }
    }

    func testEveryEdgeMessageCaseIsCovered() {
        let kinds = Set(Fixtures.edgeMessages.map(\.kind.rawValue))
        XCTAssertEqual(kinds, [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x10])
        let routed = Fixtures.edgeMessages.compactMap { message -> RoutedHeader? in
            if case .routed(let packet) = message { return packet.header }
            return nil
        }
        XCTAssertEqual(Set(routed.map(\.mode.rawValue)), Set(DeliveryMode.allCases.map(\.rawValue)))
        for type in [PayloadType.data, .connectToMe, .connectToMeReply, .routingError] {
            XCTAssertTrue(routed.contains { $0.payloadType == type }, "no routed sample carries \(type)")
        }
    }

    func testEncodingMatchesDocumentedLayout() {
        for message in Fixtures.edgeMessages {
            XCTAssertEqual(Array(message.encoded().readableBytesView), documentedBytes(of: message), "\(message)")
        }
        for ctm in Fixtures.connectToMes {
            XCTAssertEqual(Array(ctm.encoded().readableBytesView), documentedBytes(of: ctm))
        }
        for reply in Fixtures.connectToMeReplies {
            XCTAssertEqual(Array(reply.encoded().readableBytesView), documentedBytes(of: reply))
        }
        for error in Fixtures.routingErrors {
            XCTAssertEqual(Array(error.encoded().readableBytesView), documentedBytes(of: error))
        }
    }

    func testPingEncodesAsTheDocumentedHexDump() {
        let ping = EdgeMessage.ping(nonce: 0x0123_4567_89AB_CDEF).encoded()
        XCTAssertEqual(Array(ping.readableBytesView), [0x01, 0x04, 0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF])
    }

    func testRoutedHeaderIsFortyFourBytes() {
        let packet = RoutedPacket(
            header: RoutedHeader(mode: .exact, payloadType: .data, source: Fixtures.a, destination: Fixtures.b),
            payload: ByteBuffer(bytes: [1, 2, 3]))
        XCTAssertEqual(RoutedHeader.byteCount, 44)
        XCTAssertEqual(EdgeMessage.routed(packet).encoded().readableBytes, 2 + 44 + 3)
        XCTAssertEqual(packet.header.hops, 0)
        XCTAssertEqual(packet.header.ttl, RoutedHeader.defaultTTL)
    }

    func testARoutedPacketsEncodedMessageIsTheGenericEncodingBetweenItsHeadroomAndTailroom() {
        // The data path's one-access encoder (`RoutedPacket.encodedMessage`) must lay out exactly what
        // `EdgeMessage.encode` writes field by field, after `headroom` free bytes and with `tailroom` left.
        let payload = ByteBuffer(bytes: (0..<1_300).map { UInt8(truncatingIfNeeded: $0 &* 7) })
        let packet = RoutedPacket(
            header: RoutedHeader(hops: 2, ttl: 17, mode: .nearest, payloadType: .secure,
                                 source: Fixtures.a, destination: Fixtures.b),
            payload: payload.getSlice(at: 0, length: 1_300)!)
        var generic = ByteBuffer()
        packet.encode(into: &generic, version: WireFormat.version, kind: EdgeMessage.Kind.routed.rawValue)
        for (headroom, tailroom) in [(0, 0), (14, 16), (3, 0)] {
            let encoded = packet.encodedMessage(headroom: headroom, tailroom: tailroom)
            XCTAssertEqual(encoded.readerIndex, headroom)
            XCTAssertEqual(Array(encoded.readableBytesView), Array(generic.readableBytesView))
            XCTAssertGreaterThanOrEqual(encoded.writableBytes, tailroom)
            XCTAssertEqual(EdgeMessage.routed(packet).encoded(headroom: headroom, tailroom: tailroom), encoded)
        }
        guard case .routed(let decoded)? = decodeOrFail(packet.encodedMessage(headroom: 14, tailroom: 16)) else {
            return XCTFail("not decoded as a routed packet")
        }
        XCTAssertEqual(decoded, packet)
    }

    func testConnectToMeRoundTripsWithAndWithoutGateway() {
        XCTAssertTrue(Fixtures.connectToMes.contains { $0.gateway == nil })
        XCTAssertTrue(Fixtures.connectToMes.contains { $0.gateway != nil })
        for ctm in Fixtures.connectToMes {
            XCTAssertEqual(decodeOrFail { () throws(WireError) in try ConnectToMe.decode(ctm.encoded()) }, ctm)
        }
    }

    func testConnectToMeReplyRoundTrips() {
        for reply in Fixtures.connectToMeReplies {
            XCTAssertEqual(decodeOrFail { () throws(WireError) in try ConnectToMeReply.decode(reply.encoded()) }, reply)
        }
    }

    func testRoutingErrorRoundTripsForEveryCode() {
        XCTAssertEqual(Set(Fixtures.routingErrors.map(\.code.rawValue)), Set(RoutingError.Code.allCases.map(\.rawValue)))
        for error in Fixtures.routingErrors {
            XCTAssertEqual(decodeOrFail { () throws(WireError) in try RoutingError.decode(error.encoded()) }, error)
        }
    }

    func testRoutedPayloadsDecodeAfterTheRoutedPacket() {
        let ctm = Fixtures.connectToMes[1]
        let packet = RoutedPacket(
            header: RoutedHeader(hops: 3, ttl: 9, mode: .nearest, payloadType: .connectToMe,
                                 source: Fixtures.a, destination: Fixtures.b),
            payload: ctm.encoded())
        guard case .routed(let decoded)? = decodeOrFail(EdgeMessage.routed(packet).encoded()) else {
            return XCTFail("not decoded as a routed packet")
        }
        XCTAssertEqual(decoded.header, packet.header)
        XCTAssertEqual(decodeOrFail { () throws(WireError) in try ConnectToMe.decode(decoded.payload) }, ctm)
    }

    func testANodeInfosURIsCarryTheAddressesInThemAsBytes() throws {
        let relay = "relay://\(Fixtures.a.hex)/\(Fixtures.b.hex)"
        let info = NodeInfo(address: Fixtures.b, uris: [Fixtures.uri(relay)])
        let encoded = Array(EdgeMessage.linkRequest(LinkRequest(token: 1, type: .leaf, requester: info, target: nil,
                                                                observedURI: Fixtures.observed)).encoded().readableBytesView)
        let compact = Array("relay://".utf8) + [0xFF] + Fixtures.a.bytes + Array("/".utf8) + [0xFE]
        XCTAssertEqual(compact.count, 31, "89 characters as text")
        XCTAssertNotNil(encoded.firstRange(of: [UInt8(compact.count)] + compact), "the forwarder as bytes, the node itself as 0xFE")
        guard case .linkRequest(let decoded) = decodeOrFail(ByteBuffer(bytes: encoded)) else { return XCTFail("not a link request") }
        XCTAssertEqual(decoded.requester.uris.map(\.text), [relay])

        // Only runs of exactly 40 lowercase hex digits are addresses: anything else travels as it is.
        for text in ["x://\(Fixtures.a.hex.uppercased())", "x://\(Fixtures.a.hex)0", "x://\(Fixtures.a.hex.dropLast())",
                     "udp://[2001:db8::1]:4000", "x://\(Fixtures.b.hex)-\(Fixtures.b.hex)"] {
            let other = NodeInfo(address: Fixtures.a, uris: [Fixtures.uri(text)])
            let message = EdgeMessage.linkReply(LinkReply(token: 2, responder: other, observedURI: Fixtures.observed, neighbours: [other]))
            XCTAssertEqual(decodeOrFail(message.encoded()), message, text)
        }
        XCTAssertEqual(Raw.compact("x://\(Fixtures.b.hex)-\(Fixtures.b.hex)", own: Fixtures.a).count, 4 + 21 + 1 + 21)
    }

    func testAMalformedCompactURIIsATypedError() {
        func request(uri: [UInt8]) -> ByteBuffer {
            ByteBuffer(bytes: Raw().u8(WireFormat.version).u8(EdgeMessage.Kind.linkRequest.rawValue).u64(1).text("leaf")
                .address(Fixtures.a).u8(1).rawText(uri).u8(0).text(Fixtures.observed.text).bytes)
        }
        // An address marker without its 20 bytes.
        XCTAssertThrowsError(try EdgeMessage.decode(request(uri: Array("relay://".utf8) + [0xFF, 1, 2]))) { error in
            guard case .invalidText(let field, _) = error as? WireError else { return XCTFail("\(error)") }
            XCTAssertEqual(field, "requester.uri")
        }
        // One form per URI: an address spelled out, or a marker that would join more hex digits, is refused.
        for uri in [Array("relay://\(Fixtures.b.hex)".utf8), Array("x://a".utf8) + [0xFE], [0xFF] + Fixtures.b.bytes + Array("0".utf8)] {
            XCTAssertThrowsError(try EdgeMessage.decode(request(uri: uri))) { error in
                guard case .invalidText(let field, let reason) = error as? WireError else { return XCTFail("\(error)") }
                XCTAssertEqual(field, "requester.uri")
                XCTAssertTrue(reason.contains("compact form"), reason)
            }
        }
        // Seven own-address markers expand past a URI's 255 bytes.
        XCTAssertThrowsError(try EdgeMessage.decode(request(uri: Array("x://".utf8) + [UInt8](repeating: 0xFE, count: 7)))) { error in
            XCTAssertEqual(error as? WireError, .tooLong(field: "requester.uri", length: 284, limit: 255))
        }
    }

    func testLongMessageIsCutOnACharacterBoundary() {
        // 200 two-byte characters: 400 bytes, cut to the 127 characters (254 bytes) that fit in 255.
        let long = String(repeating: "é", count: 200)
        let error = EdgeMessage.linkError(LinkError(token: 1, code: .refused, message: long))
        guard case .linkError(let decoded)? = decodeOrFail(error.encoded()) else { return XCTFail("not a link error") }
        XCTAssertEqual(decoded.message, String(repeating: "é", count: 127))

        let ascii = EdgeMessage.close(Close(reason: .shutdown, message: String(repeating: "x", count: 300)))
        guard case .close(let close)? = decodeOrFail(ascii.encoded()) else { return XCTFail("not a close") }
        XCTAssertEqual(close.message, String(repeating: "x", count: WireFormat.maximumMessageLength))
    }

    func testListsAreCutToTheirWireLimits() {
        let manyURIs = (0..<20).map { Fixtures.uri("udp://10.0.0.\($0):4000") }
        XCTAssertEqual(NodeInfo(address: Fixtures.a, uris: manyURIs).uris.count, NodeInfo.maximumURIs)

        let many = Fixtures.neighbours(40, urisEach: NodeInfo.maximumURIs)
        let reply = LinkReply(token: 1, responder: Fixtures.nodeA, observedURI: Fixtures.observed, neighbours: many)
        XCTAssertEqual(reply.neighbours.count, WireFormat.maximumNeighbours)
        XCTAssertEqual(Status(neighbours: many).neighbours.count, WireFormat.maximumNeighbours)
        let ctmReply = ConnectToMeReply(token: 1, requester: Fixtures.a, type: .leaf, responder: Fixtures.nodeB,
                                        neighbours: many)
        XCTAssertEqual(ctmReply.neighbours.count, WireFormat.maximumNeighbours)

        // The largest lists the format allows still round-trip and fit in a packet.
        let largest = EdgeMessage.linkReply(reply)
        let encoded = largest.encoded()
        XCTAssertLessThanOrEqual(encoded.readableBytes, WireFormat.maximumPacketSize)
        XCTAssertEqual(decodeOrFail(encoded), largest)
        XCTAssertEqual(decodeOrFail { () throws(WireError) in try ConnectToMeReply.decode(ctmReply.encoded()) }, ctmReply)
    }

    // MARK: Truncation

    func testEveryPrefixOfEveryUnroutedMessageThrowsTruncated() {
        for message in Fixtures.edgeMessages {
            if case .routed = message { continue }
            let bytes = Array(message.encoded().readableBytesView)
            for length in 0..<bytes.count {
                let error = expectWireError(try EdgeMessage.decode(ByteBuffer(bytes: bytes[..<length])))
                XCTAssertEqual(error?.reason, "truncated", "\(message) cut to \(length) bytes: \(String(describing: error))")
            }
        }
        XCTAssertEqual(expectWireError(try EdgeMessage.decode(ByteBuffer())), .truncated(field: "version"))
        XCTAssertEqual(expectWireError(try EdgeMessage.decode(ByteBuffer(bytes: [1]))), .truncated(field: "kind"))
        XCTAssertEqual(expectWireError(try EdgeMessage.decode(ByteBuffer(bytes: [1, 4, 0, 0, 0]))),
                       .truncated(field: "nonce"))
    }

    func testRoutedPacketCutInsideItsHeaderThrowsTruncatedAndCutInsideItsPayloadIsShorter() {
        // The payload runs to the end of the packet (the edge frames packets), so any cut after the header is
        // a valid packet with a shorter payload; every cut inside the header must throw.
        for message in Fixtures.edgeMessages {
            guard case .routed(let packet) = message else { continue }
            let bytes = Array(message.encoded().readableBytesView)
            for length in 0..<bytes.count {
                let prefix = ByteBuffer(bytes: bytes[..<length])
                if length < 2 + RoutedHeader.byteCount {
                    // Named after the first field missing (the whole header is read at once when it is there).
                    let fields = ["hops", "ttl", "delivery_mode", "payload_type"]
                    let field = length < 2 ? (length == 0 ? "version" : "kind")
                        : length < 6 ? fields[length - 2] : length < 26 ? "source" : "destination"
                    XCTAssertEqual(expectWireError(try EdgeMessage.decode(prefix)), .truncated(field: field), "cut to \(length)")
                } else {
                    let payload = ByteBuffer(bytes: bytes[(2 + RoutedHeader.byteCount)..<length])
                    XCTAssertEqual(decodeOrFail(prefix), .routed(RoutedPacket(header: packet.header, payload: payload)))
                }
            }
        }
    }

    /// The node's way in for routed traffic (`isRouted`, then `decodeRouted`) takes exactly what `decode` takes
    /// as `.routed`, cut or whole, and throws what `decode` throws for anything else.
    func testARoutedMessageDecodesToTheSamePacketWithoutTheMessageEnum() {
        for message in Fixtures.edgeMessages {
            let bytes = Array(message.encoded().readableBytesView)
            for length in [0, 1, 2, 10, 2 + RoutedHeader.byteCount, bytes.count] where length <= bytes.count {
                let prefix = ByteBuffer(bytes: bytes[..<length])
                let isRouted: Bool
                if case .routed = message { isRouted = length >= 2 } else { isRouted = false }
                XCTAssertEqual(EdgeMessage.isRouted(prefix), isRouted, "\(message) cut to \(length)")
                let general = Result { () throws(WireError) in try EdgeMessage.decode(prefix) }
                let routed = Result { () throws(WireError) in try EdgeMessage.decodeRouted(prefix) }
                switch (general, routed) {
                case (.success(.routed(let expected)), .success(let packet)): XCTAssertEqual(packet, expected)
                case (_, .failure(let error)) where length >= 2 && !isRouted:
                    XCTAssertEqual(error, .unknownKind(bytes[1]), "what is not routed is refused by its kind")
                case (.failure(let expected), .failure(let error)): XCTAssertEqual(error, expected, "\(message) cut to \(length)")
                default: XCTFail("\(message) cut to \(length): \(general) against \(routed)")
                }
            }
            var otherVersion = bytes
            otherVersion[0] = 2
            XCTAssertFalse(EdgeMessage.isRouted(ByteBuffer(bytes: otherVersion)))
        }
    }

    func testEveryPrefixOfEveryRoutedPayloadThrowsTruncated() {
        for ctm in Fixtures.connectToMes {
            let bytes = Array(ctm.encoded().readableBytesView)
            for length in 0..<bytes.count {
                let error = expectWireError(try ConnectToMe.decode(ByteBuffer(bytes: bytes[..<length])))
                XCTAssertEqual(error?.reason, "truncated", "CTM cut to \(length)")
            }
        }
        for reply in Fixtures.connectToMeReplies {
            let bytes = Array(reply.encoded().readableBytesView)
            for length in 0..<bytes.count {
                let error = expectWireError(try ConnectToMeReply.decode(ByteBuffer(bytes: bytes[..<length])))
                XCTAssertEqual(error?.reason, "truncated", "CTM reply cut to \(length)")
            }
        }
        for routingError in Fixtures.routingErrors {
            let bytes = Array(routingError.encoded().readableBytesView)
            for length in 0..<bytes.count {
                let error = expectWireError(try RoutingError.decode(ByteBuffer(bytes: bytes[..<length])))
                XCTAssertEqual(error?.reason, "truncated", "routing error cut to \(length)")
            }
        }
    }

    func testEchoMatchesItsDocumentedLayoutAndRejectsCutAndLongPayloads() throws {
        let echo = Echo(token: 0x0102_0304_0506_0708, sequence: 9, requestHops: 3)
        let bytes = Array(echo.encoded().readableBytesView)
        XCTAssertEqual(bytes, [1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 9, 3])
        XCTAssertEqual(try Echo.decode(ByteBuffer(bytes: bytes)), echo)
        for length in 0..<bytes.count {
            XCTAssertEqual(expectWireError(try Echo.decode(ByteBuffer(bytes: bytes[..<length])))?.reason, "truncated")
        }
        XCTAssertEqual(expectWireError(try Echo.decode(ByteBuffer(bytes: bytes + [0])))?.reason, "trailing_bytes")
        XCTAssertEqual(PayloadType.echoRequest.description, "echo_request")
        XCTAssertEqual(PayloadType.echoReply.description, "echo_reply")
    }

    // MARK: Framing

    func testBadVersionIsRejectedForEveryMessage() {
        for message in Fixtures.edgeMessages {
            var bytes = Array(message.encoded().readableBytesView)
            for version: UInt8 in [0, 2, 0x7F, 0xFF] {
                bytes[0] = version
                XCTAssertEqual(expectWireError(try EdgeMessage.decode(ByteBuffer(bytes: bytes))), .badVersion(version))
            }
        }
        XCTAssertEqual(expectWireError(try EdgeMessage.decode(ByteBuffer(bytes: [2]))), .badVersion(2))
    }

    /// 0x08 (punch) and 0x09 (fragment) are reserved for transports: never edge messages.
    func testUnknownKindIsRejected() {
        XCTAssertNil(EdgeMessage.Kind(rawValue: PunchPacket.kind))
        XCTAssertNil(EdgeMessage.Kind(rawValue: FragmentPacket.kind))
        let known: Set<UInt8> = [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x10]
        for kind in UInt8.min...UInt8.max {
            let body: [UInt8] = [1, kind, 0, 0, 0, 0, 0, 0, 0, 0]
            if known.contains(kind) {
                XCTAssertNotNil(EdgeMessage.Kind(rawValue: kind))
                continue
            }
            XCTAssertEqual(expectWireError(try EdgeMessage.decode(ByteBuffer(bytes: body))), .unknownKind(kind))
            XCTAssertEqual(expectWireError(try EdgeMessage.decode(ByteBuffer(bytes: [1, kind]))), .unknownKind(kind))
        }
    }

    func testFragmentPacketMatchesItsTwoFirstBytesOnly() {
        XCTAssertTrue(FragmentPacket.matches(ByteBuffer(bytes: [1, 0x09])))
        XCTAssertTrue(FragmentPacket.matches(ByteBuffer(bytes: [1, 0x09, 0, 0, 0, 1, 0, 2, 42])))
        XCTAssertFalse(FragmentPacket.matches(ByteBuffer(bytes: [1])))
        XCTAssertFalse(FragmentPacket.matches(ByteBuffer(bytes: [2, 0x09, 0, 0])))
        XCTAssertFalse(FragmentPacket.matches(ByteBuffer(bytes: [1, 0x08])))
        XCTAssertFalse(FragmentPacket.matches(PunchPacket.make()))
    }

    func testTrailingBytesAreRejectedForEveryUnroutedMessage() {
        for message in Fixtures.edgeMessages {
            if case .routed = message { continue }
            for extra in [[0x00], [0x01, 0x02, 0x03]] as [[UInt8]] {
                let bytes = Array(message.encoded().readableBytesView) + extra
                XCTAssertEqual(expectWireError(try EdgeMessage.decode(ByteBuffer(bytes: bytes))),
                               .trailingBytes(extra.count), "\(message)")
            }
        }
        for ctm in Fixtures.connectToMes {
            let bytes = Array(ctm.encoded().readableBytesView) + [0]
            XCTAssertEqual(expectWireError(try ConnectToMe.decode(ByteBuffer(bytes: bytes))), .trailingBytes(1))
        }
        for reply in Fixtures.connectToMeReplies {
            let bytes = Array(reply.encoded().readableBytesView) + [0, 0]
            XCTAssertEqual(expectWireError(try ConnectToMeReply.decode(ByteBuffer(bytes: bytes))), .trailingBytes(2))
        }
        for routingError in Fixtures.routingErrors {
            let bytes = Array(routingError.encoded().readableBytesView) + [0xFF]
            XCTAssertEqual(expectWireError(try RoutingError.decode(ByteBuffer(bytes: bytes))), .trailingBytes(1))
        }
    }

    func testPacketLargerThanTheMaximumIsRejectedBeforeParsing() {
        var oversized = routedBytes(hops: 0, ttl: 1, mode: 0, payload: [])
        oversized += [UInt8](repeating: 0xAB, count: WireFormat.maximumPacketSize + 1 - oversized.count)
        XCTAssertEqual(expectWireError(try EdgeMessage.decode(ByteBuffer(bytes: oversized))),
                       .packetTooLarge(WireFormat.maximumPacketSize + 1))
        // Even garbage: the size is checked first.
        let garbage = [UInt8](repeating: 0xFF, count: 70_000)
        XCTAssertEqual(expectWireError(try EdgeMessage.decode(ByteBuffer(bytes: garbage))), .packetTooLarge(70_000))

        // Exactly the maximum is accepted.
        let largest = Array(oversized.dropLast())
        XCTAssertEqual(largest.count, WireFormat.maximumPacketSize)
        guard case .routed(let packet)? = decodeOrFail(ByteBuffer(bytes: largest)) else { return XCTFail("not routed") }
        XCTAssertEqual(packet.payload.readableBytes, WireFormat.maximumPacketSize - 2 - RoutedHeader.byteCount)
    }

    // MARK: Routed header

    func testUnknownDeliveryModeIsRejected() {
        for mode in UInt8(4)...UInt8.max {
            let bytes = routedBytes(hops: 0, ttl: 64, mode: mode, payload: [1, 2])
            XCTAssertEqual(expectWireError(try EdgeMessage.decode(ByteBuffer(bytes: bytes))), .unknownDeliveryMode(mode))
        }
        for mode in DeliveryMode.allCases {
            let bytes = routedBytes(hops: 0, ttl: 64, mode: mode.rawValue, payload: [])
            XCTAssertNotNil(decodeOrFail(ByteBuffer(bytes: bytes)))
        }
    }

    func testZeroTTLAndHopsAboveTTLAreRejected() {
        let cases: [(hops: UInt8, ttl: UInt8)] = [(0, 0), (1, 0), (255, 0), (5, 4), (2, 1), (255, 254)]
        for (hops, ttl) in cases {
            let bytes = routedBytes(hops: hops, ttl: ttl, mode: 0, payload: [])
            XCTAssertEqual(expectWireError(try EdgeMessage.decode(ByteBuffer(bytes: bytes))),
                           .badHopCount(hops: hops, ttl: ttl))
        }
        // The hop check comes before the rest of the header is read.
        XCTAssertEqual(expectWireError(try EdgeMessage.decode(ByteBuffer(bytes: [1, 0x10, 3, 0]))),
                       .badHopCount(hops: 3, ttl: 0))
        for (hops, ttl) in [(0, 1), (1, 1), (64, 64), (255, 255)] as [(UInt8, UInt8)] {
            let bytes = routedBytes(hops: hops, ttl: ttl, mode: 0, payload: [])
            guard case .routed(let packet)? = decodeOrFail(ByteBuffer(bytes: bytes)) else { return XCTFail("not routed") }
            XCTAssertEqual(packet.header.hops, hops)
            XCTAssertEqual(packet.header.ttl, ttl)
        }
    }

    func testUnknownPayloadTypeIsCarriedOpaquely() {
        let bytes = routedBytes(hops: 0, ttl: 1, mode: 1, payloadType: 0xEE, payload: [7])
        guard case .routed(let packet)? = decodeOrFail(ByteBuffer(bytes: bytes)) else { return XCTFail("not routed") }
        XCTAssertEqual(packet.header.payloadType.rawValue, 0xEE)
        XCTAssertEqual(packet.header.payloadType.description, "payload_238")
    }

    // MARK: Enumerated values

    func testUnknownLinkErrorCodeIsRejected() {
        for code: UInt8 in [0, 6, 0x80, 0xFF] {
            let bytes = Raw().u8(1).u8(0x03).u64(9).u8(code).text("no").bytes
            XCTAssertEqual(expectWireError(try EdgeMessage.decode(ByteBuffer(bytes: bytes))),
                           .unknownValue(field: "error_code", value: code))
        }
    }

    func testUnknownCloseReasonIsRejected() {
        for reason: UInt8 in [0, 7, 0xFF] {
            let bytes = Raw().u8(1).u8(0x06).u8(reason).text("").bytes
            XCTAssertEqual(expectWireError(try EdgeMessage.decode(ByteBuffer(bytes: bytes))),
                           .unknownValue(field: "close_reason", value: reason))
        }
    }

    func testUnknownRoutingErrorCodeIsRejected() {
        for code: UInt8 in [0, 4, 0xFF] {
            let bytes = Raw().u8(code).address(Fixtures.a).u8(1).address(Fixtures.b).bytes
            XCTAssertEqual(expectWireError(try RoutingError.decode(ByteBuffer(bytes: bytes))),
                           .unknownValue(field: "routing_error_code", value: code))
        }
    }

    func testOptionalAddressPresenceOtherThanZeroOrOneIsRejected() {
        for presence: UInt8 in [2, 0xFF] {
            let request = Raw().u8(1).u8(0x01).u64(1).text("leaf").nodeInfo(Fixtures.nodeA)
                .u8(presence).address(Fixtures.b).text("udp://198.18.0.9:4000").bytes
            XCTAssertEqual(expectWireError(try EdgeMessage.decode(ByteBuffer(bytes: request))),
                           .unknownValue(field: "target presence", value: presence))

            let ctm = Raw().u64(1).text("leaf").nodeInfo(Fixtures.nodeA).u8(presence).address(Fixtures.b).bytes
            XCTAssertEqual(expectWireError(try ConnectToMe.decode(ByteBuffer(bytes: ctm))),
                           .unknownValue(field: "gateway presence", value: presence))
        }
    }

    // MARK: Limits

    func testURICountAboveTheMaximumIsRejected() {
        let count = UInt8(NodeInfo.maximumURIs + 1)
        var tooMany = Raw().address(Fixtures.a).u8(count)
        for index in 0..<Int(count) { tooMany = tooMany.text("udp://10.0.0.\(index):1") }

        let request = Raw().u8(1).u8(0x01).u64(1).text("leaf").raw(tooMany.bytes).u8(0).text("memory://1:0").bytes
        XCTAssertEqual(expectWireError(try EdgeMessage.decode(ByteBuffer(bytes: request))),
                       .tooLong(field: "requester.uri_count", length: 17, limit: 16))

        let reply = Raw().u8(1).u8(0x02).u64(1).raw(tooMany.bytes).text("memory://1:0").u8(0).bytes
        XCTAssertEqual(expectWireError(try EdgeMessage.decode(ByteBuffer(bytes: reply))),
                       .tooLong(field: "responder.uri_count", length: 17, limit: 16))

        let status = Raw().u8(1).u8(0x07).u8(1).raw(tooMany.bytes).bytes
        XCTAssertEqual(expectWireError(try EdgeMessage.decode(ByteBuffer(bytes: status))),
                       .tooLong(field: "neighbours.uri_count", length: 17, limit: 16))

        let ctm = Raw().u64(1).text("leaf").raw(tooMany.bytes).u8(0).bytes
        XCTAssertEqual(expectWireError(try ConnectToMe.decode(ByteBuffer(bytes: ctm))),
                       .tooLong(field: "requester.uri_count", length: 17, limit: 16))

        let ctmReply = Raw().u64(1).address(Fixtures.a).text("leaf").raw(tooMany.bytes).u8(0).bytes
        XCTAssertEqual(expectWireError(try ConnectToMeReply.decode(ByteBuffer(bytes: ctmReply))),
                       .tooLong(field: "responder.uri_count", length: 17, limit: 16))

        // The count is refused before any URI is read: a bare count is enough (its top bits say a handshake
        // key follows and the NAT maps per peer, and are not part of it).
        let bare = Raw().u64(1).text("leaf").address(Fixtures.a).u8(0xFF).bytes
        XCTAssertEqual(expectWireError(try ConnectToMe.decode(ByteBuffer(bytes: bare))),
                       .tooLong(field: "requester.uri_count", length: 63, limit: 16))
        // So in a neighbour list.
        let neighbour = Raw().u8(1).u8(0x07).u8(1).address(Fixtures.a).u8(0xFF).bytes
        XCTAssertEqual(expectWireError(try EdgeMessage.decode(ByteBuffer(bytes: neighbour))),
                       .tooLong(field: "neighbours.uri_count", length: 63, limit: 16))
    }

    /// A node whose NAT maps per peer says so in its NodeInfo (bit 6 of `uri_count`), in neighbour lists too.
    func testANodeInfoSaysItsNATMapsPerPeer() throws {
        var info = Fixtures.nodeA
        info.mapsPerPeer = true
        let request = LinkRequest(token: 7, type: .leaf, requester: info, target: nil,
                                  observedURI: try TransportURI("udp://198.18.0.2:4000"))
        let encoded = EdgeMessage.linkRequest(request).encoded()
        guard case .linkRequest(let decoded) = try EdgeMessage.decode(encoded) else { return XCTFail("not a link request") }
        XCTAssertTrue(decoded.requester.mapsPerPeer)
        XCTAssertEqual(decoded, request)
        XCTAssertEqual(EdgeMessage.linkRequest(decoded).encoded(), encoded, "re-encodes to the same bytes")

        guard case .status(let status) = try EdgeMessage.decode(EdgeMessage.status(Status(neighbours: [info])).encoded()) else {
            return XCTFail("not a status")
        }
        XCTAssertTrue(status.neighbours[0].mapsPerPeer)
        guard case .status(let plain) = try EdgeMessage.decode(EdgeMessage.status(Status(neighbours: [Fixtures.nodeA])).encoded()) else {
            return XCTFail("not a status")
        }
        XCTAssertFalse(plain.neighbours[0].mapsPerPeer)
    }

    func testNeighbourCountAboveTheMaximumIsRejected() {
        for count: UInt8 in [UInt8(WireFormat.maximumNeighbours + 1), 0xFF] {
            let expected = WireError.tooLong(field: "neighbours count", length: Int(count),
                                             limit: WireFormat.maximumNeighbours)
            let status = Raw().u8(1).u8(0x07).u8(count).bytes
            XCTAssertEqual(expectWireError(try EdgeMessage.decode(ByteBuffer(bytes: status))), expected)

            let reply = Raw().u8(1).u8(0x02).u64(1).nodeInfo(Fixtures.nodeB).text("memory://1:0").u8(count).bytes
            XCTAssertEqual(expectWireError(try EdgeMessage.decode(ByteBuffer(bytes: reply))), expected)

            let ctmReply = Raw().u64(1).address(Fixtures.a).text("leaf").nodeInfo(Fixtures.nodeB).u8(count).bytes
            XCTAssertEqual(expectWireError(try ConnectToMeReply.decode(ByteBuffer(bytes: ctmReply))), expected)
        }
    }

    func testConnectionTypeLongerThanItsLimitIsRejected() {
        let long = String(repeating: "a", count: ConnectionType.maximumLength + 1)
        let request = Raw().u8(1).u8(0x01).u64(1).text(long).nodeInfo(Fixtures.nodeA).u8(0).text("memory://1:0").bytes
        XCTAssertEqual(expectWireError(try EdgeMessage.decode(ByteBuffer(bytes: request))),
                       .tooLong(field: "connection_type", length: 65, limit: 64))
    }

    // MARK: Text

    func testInvalidUTF8IsRejected() {
        let badUTF8: [[UInt8]] = [[0xFF], [0xC3], [0x61, 0xE2, 0x82], [0xED, 0xA0, 0x80], [0xC0, 0x80]]
        for bad in badUTF8 {
            let linkError = Raw().u8(1).u8(0x03).u64(1).u8(1).rawText(bad).bytes
            assertInvalidText(try EdgeMessage.decode(ByteBuffer(bytes: linkError)), field: "message")

            let close = Raw().u8(1).u8(0x06).u8(1).rawText(bad).bytes
            assertInvalidText(try EdgeMessage.decode(ByteBuffer(bytes: close)), field: "message")

            let type = Raw().u8(1).u8(0x01).u64(1).rawText(bad).nodeInfo(Fixtures.nodeA).u8(0).text("memory://1:0").bytes
            assertInvalidText(try EdgeMessage.decode(ByteBuffer(bytes: type)), field: "connection_type")

            let observed = Raw().u8(1).u8(0x01).u64(1).text("leaf").nodeInfo(Fixtures.nodeA).u8(0).rawText(bad).bytes
            assertInvalidText(try EdgeMessage.decode(ByteBuffer(bytes: observed)), field: "observed_uri")
        }
    }

    func testInvalidURIsAreRejected() {
        for bad in ["", "no-scheme", "udp://", "UDP://1.2.3.4:5", "udp://a b", "://x"] {
            let requester = Raw().address(Fixtures.a).u8(1).text(bad).bytes

            let request = Raw().u8(1).u8(0x01).u64(1).text("leaf").raw(requester).u8(0).text("memory://1:0").bytes
            assertInvalidText(try EdgeMessage.decode(ByteBuffer(bytes: request)), field: "requester.uri")

            let observed = Raw().u8(1).u8(0x01).u64(1).text("leaf").nodeInfo(Fixtures.nodeA).u8(0).text(bad).bytes
            assertInvalidText(try EdgeMessage.decode(ByteBuffer(bytes: observed)), field: "observed_uri")

            let reply = Raw().u8(1).u8(0x02).u64(1).nodeInfo(Fixtures.nodeB).text(bad).u8(0).bytes
            assertInvalidText(try EdgeMessage.decode(ByteBuffer(bytes: reply)), field: "observed_uri")

            let neighbour = Raw().u8(1).u8(0x07).u8(1).raw(requester).bytes
            assertInvalidText(try EdgeMessage.decode(ByteBuffer(bytes: neighbour)), field: "neighbours.uri")

            let ctm = Raw().u64(1).text("leaf").raw(requester).u8(0).bytes
            assertInvalidText(try ConnectToMe.decode(ByteBuffer(bytes: ctm)), field: "requester.uri")
        }
    }

    func testInvalidConnectionTypesAreRejected() {
        for bad in ["", "Leaf", "a b", "a/b", "ü"] {
            let request = Raw().u8(1).u8(0x01).u64(1).text(bad).nodeInfo(Fixtures.nodeA).u8(0).text("memory://1:0").bytes
            assertInvalidText(try EdgeMessage.decode(ByteBuffer(bytes: request)), field: "connection_type")

            let ctm = Raw().u64(1).text(bad).nodeInfo(Fixtures.nodeA).u8(0).bytes
            assertInvalidText(try ConnectToMe.decode(ByteBuffer(bytes: ctm)), field: "connection_type")

            let ctmReply = Raw().u64(1).address(Fixtures.a).text(bad).nodeInfo(Fixtures.nodeB).u8(0).bytes
            assertInvalidText(try ConnectToMeReply.decode(ByteBuffer(bytes: ctmReply)), field: "connection_type")
        }
    }

    func testWireErrorReasonsAreStableCounterNames() {
        let errors: [WireError] = [
            .truncated(field: "x"), .badVersion(2), .unknownKind(9), .unknownDeliveryMode(9),
            .unknownValue(field: "x", value: 9), .tooLong(field: "x", length: 2, limit: 1),
            .invalidText(field: "x", reason: "y"), .trailingBytes(1), .packetTooLarge(70_000),
            .badHopCount(hops: 2, ttl: 1),
        ]
        XCTAssertEqual(errors.map(\.reason), [
            "truncated", "bad_version", "unknown_kind", "unknown_delivery_mode", "unknown_value", "too_long",
            "invalid_text", "trailing_bytes", "packet_too_large", "bad_hop_count",
        ])
        for error in errors { XCTAssertFalse(error.description.isEmpty) }
    }

    // MARK: Fuzzing

    func testDecodingRandomBytesNeverTraps() {
        var random = SeededRandom(seed: 0x574F_5701)
        let kinds: [UInt8] = [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x10]
        var reasons = [String: Int]()
        var accepted = 0
        for _ in 0..<20_000 {
            let length = Int.random(in: 0...300, using: &random)
            var bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &random) }
            // Mostly a valid version and kind, so the fuzz reaches the bodies rather than the framing.
            if length > 0, random.next() % 8 != 0 { bytes[0] = WireFormat.version }
            if length > 1, random.next() % 8 != 0 { bytes[1] = kinds.randomElement(using: &random)! }
            let buffer = ByteBuffer(bytes: bytes)
            // `decode` throws only `WireError` (typed throws); reaching the next line at all means no trap.
            do {
                let message = try EdgeMessage.decode(buffer)
                accepted += 1
                XCTAssertEqual(Array(message.encoded().readableBytesView), bytes, "accepted bytes must re-encode")
            } catch {
                reasons[error.reason, default: 0] += 1
            }
            do { _ = try ConnectToMe.decode(buffer) } catch { reasons[error.reason, default: 0] += 1 }
            do { _ = try ConnectToMeReply.decode(buffer) } catch { reasons[error.reason, default: 0] += 1 }
            do { _ = try RoutingError.decode(buffer) } catch { reasons[error.reason, default: 0] += 1 }
        }
        XCTAssertTrue(Set(reasons.keys).isSubset(of: Fixtures.allReasons), "\(reasons)")
        XCTAssertGreaterThan(accepted, 0, "the fuzz should reach some valid (routed) packets")
        XCTAssertGreaterThan(reasons.count, 5, "the fuzz should reach many distinct errors: \(reasons)")
    }

    func testDecodingMutatedPacketsNeverTraps() {
        var random = SeededRandom(seed: 0x574F_5702)
        var reasons = [String: Int]()
        var edge = Fixtures.edgeMessages.map { Array($0.encoded().readableBytesView) }
        edge.append(Array(EdgeMessage.linkReply(LinkReply(
            token: 5, responder: Fixtures.nodeA, observedURI: Fixtures.observed,
            neighbours: Fixtures.neighbours(5, urisEach: 3))).encoded().readableBytesView))
        let ctms = Fixtures.connectToMes.map { Array($0.encoded().readableBytesView) }
        let replies = Fixtures.connectToMeReplies.map { Array($0.encoded().readableBytesView) }
        let errors = Fixtures.routingErrors.map { Array($0.encoded().readableBytesView) }

        func mutate(_ bytes: [UInt8]) -> [UInt8] {
            var out = bytes
            let mutations = random.next() % 4 == 0 ? Int.random(in: 2...4, using: &random) : 1
            for _ in 0..<mutations where !out.isEmpty {
                let index = Int.random(in: 0..<out.count, using: &random)
                switch random.next() % 4 {
                case 0: out[index] ^= UInt8(1) << UInt8.random(in: 0...7, using: &random)
                case 1: out[index] = [0x00, 0x01, 0x02, 0x10, 0x20, 0x21, 0x7F, 0x80, 0xC3, 0xFF].randomElement(using: &random)!
                default: out[index] = UInt8.random(in: 0...255, using: &random)
                }
            }
            return out
        }

        for round in 0..<40 {
            for original in edge {
                let bytes = mutate(original)
                do {
                    let message = try EdgeMessage.decode(ByteBuffer(bytes: bytes))
                    XCTAssertEqual(Array(message.encoded().readableBytesView), bytes, "round \(round)")
                } catch {
                    reasons[error.reason, default: 0] += 1
                }
            }
            for original in ctms {
                let bytes = mutate(original)
                do {
                    let ctm = try ConnectToMe.decode(ByteBuffer(bytes: bytes))
                    XCTAssertEqual(Array(ctm.encoded().readableBytesView), bytes)
                } catch {
                    reasons[error.reason, default: 0] += 1
                }
            }
            for original in replies {
                let bytes = mutate(original)
                do {
                    let reply = try ConnectToMeReply.decode(ByteBuffer(bytes: bytes))
                    XCTAssertEqual(Array(reply.encoded().readableBytesView), bytes)
                } catch {
                    reasons[error.reason, default: 0] += 1
                }
            }
            for original in errors {
                let bytes = mutate(original)
                do {
                    let routingError = try RoutingError.decode(ByteBuffer(bytes: bytes))
                    XCTAssertEqual(Array(routingError.encoded().readableBytesView), bytes)
                } catch {
                    reasons[error.reason, default: 0] += 1
                }
            }
        }
        XCTAssertTrue(Set(reasons.keys).isSubset(of: Fixtures.allReasons), "\(reasons)")
        XCTAssertGreaterThan(reasons.count, 5, "mutations should reach many distinct errors: \(reasons)")
    }

    // MARK: Helpers

    /// Decodes an edge message, failing the test (and returning nil) on any error.
    private func decodeOrFail(_ buffer: ByteBuffer, file: StaticString = #filePath, line: UInt = #line) -> EdgeMessage? {
        decodeOrFail({ () throws(WireError) in try EdgeMessage.decode(buffer) }, file: file, line: line)
    }

    private func decodeOrFail<T>(_ decode: () throws(WireError) -> T, file: StaticString = #filePath,
                                 line: UInt = #line) -> T? {
        do {
            return try decode()
        } catch {
            XCTFail("unexpected \(error)", file: file, line: line)
            return nil
        }
    }

    /// The `WireError` that `expression` throws; fails the test if it returns or throws anything else.
    private func expectWireError<T>(_ expression: @autoclosure () throws -> T, file: StaticString = #filePath,
                                    line: UInt = #line) -> WireError? {
        do {
            let value = try expression()
            XCTFail("expected a WireError, decoded \(value)", file: file, line: line)
            return nil
        } catch let error as WireError {
            return error
        } catch {
            XCTFail("expected a WireError, got \(error)", file: file, line: line)
            return nil
        }
    }

    private func assertInvalidText<T>(_ expression: @autoclosure () throws -> T, field expectedField: String,
                                      file: StaticString = #filePath, line: UInt = #line) {
        let error = expectWireError(try expression(), file: file, line: line)
        guard case .invalidText(let field, let reason)? = error else {
            return XCTFail("expected invalidText(\(expectedField)), got \(String(describing: error))", file: file, line: line)
        }
        XCTAssertEqual(field, expectedField, file: file, line: line)
        XCTAssertFalse(reason.isEmpty, file: file, line: line)
    }

    private func routedBytes(hops: UInt8, ttl: UInt8, mode: UInt8, payloadType: UInt8 = 0x01,
                             payload: [UInt8]) -> [UInt8] {
        Raw().u8(1).u8(0x10).u8(hops).u8(ttl).u8(mode).u8(payloadType).address(Fixtures.a).address(Fixtures.b)
            .raw(payload).bytes
    }

    // MARK: The documented layout, written independently of the codec

    private func documentedBytes(of message: EdgeMessage) -> [UInt8] {
        let head = Raw().u8(0x01)
        switch message {
        case .linkRequest(let m):
            return head.u8(0x01).u64(m.token).text(m.type.name).nodeInfo(m.requester).optionalAddress(m.target)
                .text(m.observedURI.text).bytes
        case .linkReply(let m):
            return head.u8(0x02).u64(m.token).nodeInfo(m.responder).text(m.observedURI.text).nodeInfos(m.neighbours).bytes
        case .linkError(let m):
            return head.u8(0x03).u64(m.token).u8(m.code.rawValue).text(m.message).bytes
        case .ping(let nonce):
            return head.u8(0x04).u64(nonce).bytes
        case .pong(let nonce):
            return head.u8(0x05).u64(nonce).bytes
        case .close(let m):
            return head.u8(0x06).u8(m.reason.rawValue).text(m.message).bytes
        case .status(let m):
            return head.u8(0x07).nodeInfos(m.neighbours).bytes
        case .routed(let p):
            let h = p.header
            return head.u8(0x10).u8(h.hops).u8(h.ttl).u8(h.mode.rawValue).u8(h.payloadType.rawValue)
                .address(h.source).address(h.destination).raw(Array(p.payload.readableBytesView)).bytes
        }
    }

    private func documentedBytes(of m: ConnectToMe) -> [UInt8] {
        Raw().u64(m.token).text(m.type.name).nodeInfo(m.requester).optionalAddress(m.gateway).bytes
    }

    private func documentedBytes(of m: ConnectToMeReply) -> [UInt8] {
        Raw().u64(m.token).address(m.requester).text(m.type.name).nodeInfo(m.responder).nodeInfos(m.neighbours).bytes
    }

    private func documentedBytes(of m: RoutingError) -> [UInt8] {
        Raw().u8(m.code.rawValue).address(m.destination).u8(m.payloadType.rawValue).address(m.reporter).bytes
    }
}

/// Builds bytes field by field as docs/protocol.md describes them, without the codec's own writer.
private struct Raw {
    var bytes: [UInt8] = []

    func raw(_ more: [UInt8]) -> Raw { Raw(bytes: bytes + more) }
    func u8(_ value: UInt8) -> Raw { raw([value]) }
    func u64(_ value: UInt64) -> Raw { raw((0..<8).map { UInt8(truncatingIfNeeded: value >> (56 - 8 * UInt64($0))) }) }
    func u32(_ value: UInt32) -> Raw { raw((0..<4).map { UInt8(truncatingIfNeeded: value >> (24 - 8 * UInt32($0))) }) }
    func address(_ address: Address) -> Raw { u64(address.high).u64(address.middle).u32(address.low) }
    /// A u8 length then the bytes, which need not be valid UTF-8.
    func rawText(_ text: [UInt8]) -> Raw { u8(UInt8(text.count)).raw(text) }
    func text(_ text: String) -> Raw { rawText(Array(text.utf8)) }
    func optionalAddress(_ address: Address?) -> Raw { address.map { u8(1).address($0) } ?? u8(0) }

    func nodeInfo(_ info: NodeInfo) -> Raw {
        info.uris.reduce(address(info.address).u8(UInt8(info.uris.count))) { $0.rawText(Raw.compact($1.text, own: info.address)) }
    }

    /// A NodeInfo's URI as documented: each run of exactly 40 lowercase hex digits (an address) becomes 0xFE if
    /// it is the info's own address, else 0xFF and the address's 20 bytes.
    static func compact(_ text: String, own: Address) -> [UInt8] {
        var out: [UInt8] = []
        var run = ""
        func flush() {
            if run.count == 40, let address = Address(hex: run) {
                out += address == own ? [0xFE] : [0xFF] + address.bytes
            } else {
                out += Array(run.utf8)
            }
            run = ""
        }
        for character in text {
            if character.isHexDigit, !character.isUppercase { run.append(character); continue }
            flush()
            out += Array(String(character).utf8)
        }
        flush()
        return out
    }

    func nodeInfos(_ infos: [NodeInfo]) -> Raw {
        infos.reduce(u8(UInt8(infos.count))) { $0.nodeInfo($1) }
    }
}

/// Sample values covering every case of every message.
private enum Fixtures {
    static let a = Address(hex: "0123456789abcdef0123456789abcdef01234567")!
    static let b = Address(hex: "fedcba9876543210fedcba9876543210fedcba98")!

    /// Test literals only: a bad one is a bug in this file.
    static func uri(_ text: String) -> TransportURI { try! TransportURI(text) }

    static let observed = uri("udp://198.18.0.9:40000")
    static let nodeA = NodeInfo(address: a, uris: [uri("udp://198.18.0.1:4000"), uri("udp://[2001:db8::1]:4000")])
    static let nodeB = NodeInfo(address: b, uris: [uri("memory://7:1"), uri("relay://\(a.hex)/\(b.hex)")])
    static let nodeBare = NodeInfo(address: .half, uris: [])

    static let allReasons: Set<String> = [
        "truncated", "bad_version", "unknown_kind", "unknown_delivery_mode", "unknown_value", "too_long",
        "invalid_text", "trailing_bytes", "packet_too_large", "bad_hop_count",
    ]

    static func neighbours(_ count: Int, urisEach: Int) -> [NodeInfo] {
        var random = SeededRandom(seed: UInt64(count * 1000 + urisEach))
        return (0..<count).map { index in
            NodeInfo(address: random.address(),
                     uris: (0..<urisEach).map { uri("udp://[2001:db8:\(index)::\($0)]:\(40000 + $0)") })
        }
    }

    static let connectToMes: [ConnectToMe] = [
        ConnectToMe(token: 11, type: .leaf, requester: nodeA, gateway: nil),
        ConnectToMe(token: .max, type: "structured.near", requester: nodeBare, gateway: b),
        ConnectToMe(token: 0, type: "structured.shortcut", requester: nodeB, gateway: .zero),
    ]

    static let connectToMeReplies: [ConnectToMeReply] = [
        ConnectToMeReply(token: 11, requester: a, type: .leaf, responder: nodeB, neighbours: []),
        ConnectToMeReply(token: 12, requester: .max, type: "structured.near", responder: nodeBare,
                         neighbours: [nodeA, nodeB, nodeBare]),
    ]

    static let routingErrors: [RoutingError] = RoutingError.Code.allCases.map { code in
        RoutingError(code: code, destination: b, payloadType: PayloadType(rawValue: code.rawValue), reporter: a)
    } + [RoutingError(code: .noRoute, destination: .max, payloadType: PayloadType(rawValue: 0xEE), reporter: .zero)]

    static let payloads: [(PayloadType, ByteBuffer)] = [
        (.data, ByteBuffer(bytes: [0x45, 0x00, 0x00, 0x1C, 0xDE, 0xAD, 0xBE, 0xEF])),
        (.connectToMe, connectToMes[1].encoded()),
        (.connectToMeReply, connectToMeReplies[1].encoded()),
        (.routingError, routingErrors[0].encoded()),
        (PayloadType(rawValue: 0xEE), ByteBuffer(bytes: [0x99])),
    ]

    static let edgeMessages: [EdgeMessage] = {
        var list: [EdgeMessage] = [
            .linkRequest(LinkRequest(token: 1, type: .leaf, requester: nodeA, target: nil, observedURI: observed)),
            .linkRequest(LinkRequest(token: .max, type: "structured.near", requester: nodeBare, target: b,
                                     observedURI: uri("memory://2:0"))),
            .linkReply(LinkReply(token: 2, responder: nodeB, observedURI: observed, neighbours: [])),
            .linkReply(LinkReply(token: 3, responder: nodeA, observedURI: uri("tcp://[::1]:1"),
                                 neighbours: [nodeA, nodeB, nodeBare])),
            .linkError(LinkError(token: 4, code: .refused, message: "")),
            .ping(nonce: 0),
            .ping(nonce: 0x0123_4567_89AB_CDEF),
            .pong(nonce: 0),
            .pong(nonce: .max),
            .close(Close(reason: .trimmed, message: "")),
            .status(Status(neighbours: [])),
            .status(Status(neighbours: [nodeB, nodeA])),
        ]
        for code in LinkError.Code.allCases {
            list.append(.linkError(LinkError(token: UInt64(code.rawValue) << 40, code: code,
                                             message: "code \(code.rawValue): ünïcødé ✓")))
        }
        for reason in Close.Reason.allCases {
            list.append(.close(Close(reason: reason, message: "closing (\(reason))")))
        }
        for mode in DeliveryMode.allCases {
            for (type, payload) in payloads {
                let header = RoutedHeader(hops: mode.rawValue, ttl: 64, mode: mode, payloadType: type,
                                          source: a, destination: b)
                list.append(.routed(RoutedPacket(header: header, payload: payload)))
            }
        }
        list.append(.routed(RoutedPacket(
            header: RoutedHeader(hops: 255, ttl: 255, mode: .left, payloadType: .data, source: .max, destination: .zero),
            payload: ByteBuffer())))
        list.append(.routed(RoutedPacket(
            header: RoutedHeader(hops: 0, ttl: 1, mode: .right, payloadType: .data, source: .zero, destination: .max),
            payload: ByteBuffer(bytes: [0]))))
        return list
    }()
}
