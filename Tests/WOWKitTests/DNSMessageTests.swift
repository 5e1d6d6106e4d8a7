import NIOCore
import XCTest

@testable import WOWKit

/// The DNS codec and responder on hand-built datagrams shaped like `dig`'s: every outcome of
/// `DNSResponder.answer`, the encoded responses byte by byte, and malformed input ending in a typed error,
/// FORMERR or a drop, never a trap.
final class DNSMessageTests: XCTestCase {
    private let responder = DNSResponder()
    private let beta = DNSAddress.v4(0x6440_0007)  // 100.64.0.7
    private let betaV6 = DNSAddress(bytes: [0xFD, 0x00, 0x77, 0x6F, 0x77, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x07])!

    // MARK: Outcomes

    func testMemberNameAsksTheNodeToLookItUp() throws {
        let datagram = Query(name: "beta.wow").bytes
        let outcome = responder.answer(datagram)
        let expected = try DNSQuery(parsing: datagram)
        XCTAssertEqual(outcome, .lookup(name: "beta", query: expected))
        XCTAssertEqual(expected.id, 0xBEEF)
        XCTAssertTrue(expected.recursionDesired)
        XCTAssertEqual(expected.opcode, 0)
        XCTAssertEqual(expected.question.name, ["beta", "wow"])
        XCTAssertEqual(expected.question.type, DNSMessage.RecordType.a)
        XCTAssertEqual(expected.question.class, DNSMessage.RecordClass.internet)
        XCTAssertEqual(expected.edns, DNSQuery.EDNS(udpPayloadSize: 1232, version: 0, dnssecOK: false))
    }

    func testNameCaseIsIgnoredForLookupButEchoedInTheQuestion() throws {
        let datagram = Query(name: "BeTa.WoW").bytes
        let query = try lookupQuery(datagram, expecting: "beta")
        let reply = responder.reply(to: query, addresses: [beta])
        // The question section follows the header; 0x20-randomising resolvers compare it byte for byte.
        XCTAssertEqual(Array(reply.readableBytesView[12..<22]), Array("\u{4}BeTa\u{3}WoW\u{0}".utf8))
    }

    func testEveryQueryTypeForAMemberIsLookedUp() throws {
        for type: UInt16 in [1, 28, 255, 15, 16, 65] {
            _ = try lookupQuery(Query(name: "beta.wow", type: type).bytes, expecting: "beta")
        }
    }

    func testMultiLabelDomainMatchesOnlyUnderItself() throws {
        let corp = DNSResponder(domain: "Corp.WOW.", ttl: 30)
        XCTAssertEqual(corp.domain, ["corp", "wow"])
        if case .lookup(let name, _) = corp.answer(Query(name: "beta.CORP.wow").bytes) {
            XCTAssertEqual(name, "beta")
        } else {
            XCTFail("beta.corp.wow should be looked up")
        }
        XCTAssertEqual(rcode(corp.answer(Query(name: "beta.wow").bytes)), 5)
        XCTAssertEqual(rcode(corp.answer(Query(name: "beta.other.wow").bytes)), 5)
        XCTAssertEqual(rcode(corp.answer(Query(name: "corp.wow").bytes)), 0)
        XCTAssertEqual(rcode(corp.answer(Query(name: "x.beta.corp.wow").bytes)), 3)
    }

    func testBareDomainExistsWithoutRecords() throws {
        let reply = try replyBytes(responder.answer(Query(name: "wow").bytes))
        XCTAssertEqual(flags(reply), 0x8500)  // QR, AA, RD, NOERROR: not NXDOMAIN, which would hide every member
        XCTAssertEqual(counts(reply), [1, 0, 0, 1])
    }

    func testDeeperNamesAndImpossibleLabelsDoNotExist() throws {
        for name in ["x.beta.wow", "a.b.c.wow", "be+ta.wow", "be ta.wow", "b\u{E9}ta.wow"] {
            let reply = try replyBytes(responder.answer(Query(name: name).bytes))
            XCTAssertEqual(flags(reply), 0x8503, name)  // QR, AA, RD, NXDOMAIN
            XCTAssertEqual(counts(reply), [1, 0, 0, 1], name)
        }
        _ = try lookupQuery(Query(name: "my_host-2.wow").bytes, expecting: "my_host-2")
    }

    func testNamesOutsideTheDomainAreRefusedWithoutAuthority() throws {
        let reply = try replyBytes(responder.answer(Query(name: "example.com").bytes))
        XCTAssertEqual(flags(reply), 0x8105)  // QR, RD, REFUSED; no AA: not our zone
        XCTAssertEqual(counts(reply), [1, 0, 0, 1])
        XCTAssertEqual(rcode(responder.answer(Query(name: "wow.example.com").bytes)), 5)
        XCTAssertEqual(rcode(responder.answer(Query(name: "").bytes)), 5)
    }

    func testOtherClassesAreRefused() {
        XCTAssertEqual(rcode(responder.answer(Query(name: "beta.wow", type: 16, qclass: 3).bytes)), 5)
        if case .lookup = responder.answer(Query(name: "beta.wow", qclass: 255).bytes) {} else {
            XCTFail("QCLASS * is answered like IN")
        }
    }

    func testOpcodesOtherThanQueryAreNotImplemented() throws {
        for opcode: UInt16 in [1, 2, 4, 5] {
            let reply = try replyBytes(responder.answer(Query(name: "beta.wow", flags: opcode << 11 | 0x0100).bytes))
            XCTAssertEqual(Array(reply.readableBytesView),
                           [0xBE, 0xEF, 0x80 | UInt8(opcode << 3) | 0x01, 0x04, 0, 0, 0, 0, 0, 0, 0, 0], "opcode \(opcode)")
        }
    }

    func testResponsesAndRuntsAreDroppedNeverAnswered() {
        XCTAssertEqual(responder.answer(Query(name: "beta.wow", flags: 0x8180).bytes), .drop(reason: .notAQuery))
        let full = Query(name: "beta.wow").bytes
        for length in 0..<DNSMessage.headerSize {
            XCTAssertEqual(responder.answer(full.getSlice(at: 0, length: length)!),
                           .drop(reason: .truncated(field: "header")), "\(length) bytes")
        }
    }

    func testUnsupportedEDNSVersionGetsBADVERS() throws {
        let reply = try replyBytes(responder.answer(Query(name: "beta.wow", ednsVersion: 1).bytes))
        XCTAssertEqual(flags(reply), 0x8100)  // QR, RD, low RCODE bits 0; no AA
        XCTAssertEqual(counts(reply), [1, 0, 0, 1])
        // OPT at the end: root, type 41, our payload size, TTL = extended RCODE 1 (BADVERS = 16), version 0.
        XCTAssertEqual(Array(reply.readableBytesView.suffix(11)), [0, 0, 41, 0x04, 0xD0, 1, 0, 0, 0, 0, 0])
    }

    // MARK: Encoded replies

    func testAReplyMatchesTheWireFormatByteForByte() throws {
        let query = try lookupQuery(Query(name: "beta.wow").bytes, expecting: "beta")
        let reply = responder.reply(to: query, addresses: [beta, betaV6])
        XCTAssertEqual(Array(reply.readableBytesView), [
            0xBE, 0xEF,  // id
            0x85, 0x00,  // QR, opcode 0, AA, RD; RA 0, AD not copied, NOERROR
            0, 1, 0, 1, 0, 0, 0, 1,  // one question, one answer, no authority, the OPT record
            4, 0x62, 0x65, 0x74, 0x61, 3, 0x77, 0x6F, 0x77, 0,  // beta.wow
            0, 1, 0, 1,  // A, IN
            0xC0, 0x0C,  // pointer to the question name
            0, 1, 0, 1,  // A, IN
            0, 0, 0, 60,  // TTL
            0, 4, 100, 64, 0, 7,  // rdlength, 100.64.0.7
            0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0, 0, 0,  // OPT: root, 1232 bytes, rcode/version/flags 0, no options
        ])
    }

    func testAAAAReplyWithoutEDNSMatchesTheWireFormat() throws {
        let query = try lookupQuery(Query(name: "beta.wow", type: 28, flags: 0, edns: false).bytes, expecting: "beta")
        let reply = DNSResponder(ttl: 0x0102_0304).reply(to: query, addresses: [beta, betaV6])
        XCTAssertEqual(Array(reply.readableBytesView), [
            0xBE, 0xEF, 0x84, 0x00,  // QR, AA; RD was not asked for
            0, 1, 0, 1, 0, 0, 0, 0,
            4, 0x62, 0x65, 0x74, 0x61, 3, 0x77, 0x6F, 0x77, 0, 0, 28, 0, 1,
            0xC0, 0x0C, 0, 28, 0, 1, 1, 2, 3, 4, 0, 16,
            0xFD, 0x00, 0x77, 0x6F, 0x77, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x07,
        ])
    }

    func testANYGetsBothFamiliesWithoutDuplicates() throws {
        let query = try lookupQuery(Query(name: "beta.wow", type: 255).bytes, expecting: "beta")
        let reply = responder.reply(to: query, addresses: [beta, betaV6, beta])
        XCTAssertEqual(counts(reply), [1, 2, 0, 1])
        XCTAssertEqual(answerTypes(reply), [1, 28])
    }

    func testUnknownNameIsNXDOMAIN() throws {
        let query = try lookupQuery(Query(name: "gamma.wow").bytes, expecting: "gamma")
        let reply = responder.reply(to: query, addresses: nil)
        XCTAssertEqual(flags(reply), 0x8503)
        XCTAssertEqual(counts(reply), [1, 0, 0, 1])
        XCTAssertEqual(Array(reply.readableBytesView[12..<27]),
                       [5, 0x67, 0x61, 0x6D, 0x6D, 0x61, 3, 0x77, 0x6F, 0x77, 0, 0, 1, 0, 1])
    }

    func testKnownNameWithoutThatFamilyIsNODATA() throws {
        let aaaa = try lookupQuery(Query(name: "beta.wow", type: 28).bytes, expecting: "beta")
        let reply = responder.reply(to: aaaa, addresses: [beta])
        XCTAssertEqual(flags(reply), 0x8500)
        XCTAssertEqual(counts(reply), [1, 0, 0, 1])
        let mx = try lookupQuery(Query(name: "beta.wow", type: 15).bytes, expecting: "beta")
        XCTAssertEqual(counts(responder.reply(to: mx, addresses: [beta, betaV6])), [1, 0, 0, 1])
        XCTAssertEqual(flags(responder.reply(to: mx, addresses: [])), 0x8500)
    }

    func testLookupFailureIsSERVFAIL() throws {
        let query = try lookupQuery(Query(name: "beta.wow").bytes, expecting: "beta")
        XCTAssertEqual(flags(responder.serverFailure(to: query)), 0x8102)
    }

    func testOversizedReplySetsTCAndCarriesNoAnswers() throws {
        // A 4 x 50-byte domain makes a 210-byte question name; 12 AAAA records make 336 bytes more.
        let longDomain = (0..<4).map { _ in String(repeating: "d", count: 50) }.joined(separator: ".")
        let long = DNSResponder(domain: longDomain)
        let addresses = (1...12).map { DNSAddress.v6(high: 0xFD00_0000_0000_0000, low: UInt64($0)) }

        let classic = try lookupQuery(Query(name: "beta." + longDomain, type: 28, edns: false).bytes, in: long)
        let truncated = long.reply(to: classic, addresses: addresses)
        XCTAssertEqual(flags(truncated), 0x8700)  // QR, AA, TC, RD
        XCTAssertEqual(counts(truncated), [1, 0, 0, 0])
        XCTAssertLessThanOrEqual(truncated.readableBytes, 512)

        let edns = try lookupQuery(Query(name: "beta." + longDomain, type: 28).bytes, in: long)
        let full = long.reply(to: edns, addresses: addresses)
        XCTAssertEqual(flags(full), 0x8500)
        XCTAssertEqual(counts(full), [1, 12, 0, 1])
        XCTAssertGreaterThan(full.readableBytes, 512)
    }

    // MARK: Malformed input

    func testTruncatedQuestionIsFORMERR() throws {
        let full = Query(name: "beta.wow", edns: false).bytes
        let cuts: [(Int, String)] = [(12, "question name"), (16, "question name"), (21, "question name"),
                                     (22, "question type"), (23, "question type"), (25, "question class")]
        for (length, field) in cuts {
            let datagram = full.getSlice(at: 0, length: length)!
            XCTAssertThrowsError(try DNSQuery(parsing: datagram)) {
                XCTAssertEqual($0 as? DNSMessageError, .truncated(field: field), "\(length) bytes")
            }
            XCTAssertEqual(Array(try replyBytes(responder.answer(datagram)).readableBytesView),
                           [0xBE, 0xEF, 0x81, 0x01, 0, 0, 0, 0, 0, 0, 0, 0], "\(length) bytes")
        }
    }

    func testEveryPrefixOfADigQueryIsDroppedOrFORMERR() {
        let full = Query(name: "beta.wow").bytes
        for length in 0..<full.readableBytes {
            let outcome = responder.answer(full.getSlice(at: 0, length: length)!)
            if length < DNSMessage.headerSize {
                XCTAssertEqual(outcome, .drop(reason: .truncated(field: "header")))
            } else {
                XCTAssertEqual(rcode(outcome), 1, "\(length) bytes")
            }
        }
    }

    func testLabelOf64BytesIsRejected() throws {
        let label64 = String(repeating: "a", count: 64)
        assertMalformed(Query(name: label64 + ".wow").bytes, .labelTooLong(64))
        _ = try lookupQuery(Query(name: String(repeating: "a", count: 63) + ".wow").bytes,
                             expecting: String(repeating: "a", count: 63))
    }

    func testNameOver255BytesIsRejected() throws {
        let label63 = String(repeating: "x", count: 63)
        // 3 x 64 + 62 + the terminating zero = 255: the longest legal name.
        let longest = [label63, label63, label63, String(repeating: "x", count: 61)].joined(separator: ".")
        XCTAssertEqual(try DNSQuery(parsing: Query(name: longest).bytes).question.wireName.readableBytes, 255)
        assertMalformed(Query(name: longest + "x").bytes, .nameTooLong)
        assertMalformed(Query(name: [label63, label63, label63, label63, "wow"].joined(separator: ".")).bytes,
                        .nameTooLong)
    }

    func testCompressionPointerLoopInQuestionIsRejected() {
        // The question name is a pointer to itself (offset 12), then a pointer to the header.
        assertMalformed(Query(rawName: [0xC0, 0x0C]).bytes, .compressionPointerInQuestion)
        assertMalformed(Query(rawName: [4, 0x62, 0x65, 0x74, 0x61, 0xC0, 0x00]).bytes, .compressionPointerInQuestion)
        assertMalformed(Query(rawName: [0x80]).bytes, .labelTooLong(0x80))
    }

    func testQuestionCountOtherThanOneIsFORMERR() {
        assertMalformed(Query(name: "beta.wow", questionCount: 0).bytes, .badQuestionCount(0))
        assertMalformed(Query(name: "beta.wow", questionCount: 2).bytes, .badQuestionCount(2))
    }

    func testBadAdditionalRecordsAreFORMERRButPointersThereAreSkipped() throws {
        let opt: [UInt8] = [0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0, 0, 0]
        assertMalformed(Query(name: "beta.wow", additional: [opt, opt]).bytes, .multipleOPTRecords)
        assertMalformed(Query(name: "beta.wow", additional: [[0xC0, 0x0C] + opt.dropFirst()]).bytes, .optOwnerNotRoot)
        assertMalformed(Query(name: "beta.wow", additional: [Array(opt.prefix(8))]).bytes,
                        .truncated(field: "record header"))
        assertMalformed(Query(name: "beta.wow", additional: [Array(opt.prefix(9)) + [0, 4, 1]]).bytes,
                        .truncated(field: "record data"))
        assertMalformed(Query(name: "beta.wow", additional: [[0xC0]]).bytes, .truncated(field: "record name"))

        // A TSIG-like record (at offset 26) named by a pointer to itself, then the OPT: the pointer ends the
        // name and is never followed.
        let selfPointer: [UInt8] = [0xC0, 26, 0, 250, 0, 255, 0, 0, 0, 0, 0, 0]
        let query = try DNSQuery(parsing: Query(name: "beta.wow", additional: [selfPointer, opt]).bytes)
        XCTAssertEqual(query.edns?.udpPayloadSize, 1232)
    }

    func testRandomBytesNeverTrap() {
        var random = SeededRandom(seed: 53)
        let valid = Array(Query(name: "beta.wow").bytes.readableBytesView)
        for _ in 0..<2_000 {
            var bytes = valid
            for _ in 0..<Int.random(in: 1...6, using: &random) {
                bytes[Int.random(in: 0..<bytes.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
            }
            let outcome = responder.answer(ByteBuffer(bytes: bytes))
            switch outcome {
            case .drop(let reason):
                XCTAssertEqual(reason, .notAQuery)
            case .reply(let reply):
                XCTAssertEqual(reply.getInteger(at: 0, as: UInt16.self), UInt16(bytes[0]) << 8 | UInt16(bytes[1]))
                XCTAssertNotEqual(flags(reply) & 0x8000, 0)
            case .lookup(let name, let query):
                XCTAssertTrue(DNSResponder.isMemberName(name))
                XCTAssertGreaterThan(responder.reply(to: query, addresses: [beta, betaV6]).readableBytes, 12)
            }
        }
    }

    // MARK: Helpers

    private struct UnexpectedOutcome: Error {}

    /// A query datagram built field by field, shaped like `dig`'s by default: RD and AD set, one question,
    /// and an OPT record advertising 1232 bytes with a client cookie option.
    private struct Query {
        var name = ""
        var rawName: [UInt8]? = nil
        var type: UInt16 = 1
        var qclass: UInt16 = 1
        var flags: UInt16 = 0x0120
        var questionCount: UInt16 = 1
        var edns = true
        var ednsVersion: UInt8 = 0
        var additional: [[UInt8]]? = nil

        var bytes: ByteBuffer {
            let cookieOPT: [UInt8] = [0, 0, 41, 0x04, 0xD0, 0, ednsVersion, 0, 0, 0, 12,
                                      0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8]
            let records = additional ?? (edns ? [cookieOPT] : [])
            var buffer = ByteBuffer()
            buffer.writeInteger(UInt16(0xBEEF))
            buffer.writeInteger(flags)
            buffer.writeInteger(questionCount)
            buffer.writeInteger(UInt16(0))
            buffer.writeInteger(UInt16(0))
            buffer.writeInteger(UInt16(records.count))
            buffer.writeBytes(rawName ?? wireName(name))
            buffer.writeInteger(type)
            buffer.writeInteger(qclass)
            for record in records { buffer.writeBytes(record) }
            return buffer
        }

        private func wireName(_ text: String) -> [UInt8] {
            text.split(separator: ".").flatMap { [UInt8($0.utf8.count)] + Array($0.utf8) } + [0]
        }
    }

    private func lookupQuery(_ datagram: ByteBuffer, expecting name: String? = nil,
                             in responder: DNSResponder? = nil,
                             file: StaticString = #filePath, line: UInt = #line) throws -> DNSQuery {
        let outcome = (responder ?? self.responder).answer(datagram)
        guard case .lookup(let looked, let query) = outcome else {
            XCTFail("expected a lookup, got \(outcome)", file: file, line: line)
            throw UnexpectedOutcome()
        }
        if let name { XCTAssertEqual(looked, name, file: file, line: line) }
        return query
    }

    private func replyBytes(_ outcome: DNSResponder.Outcome,
                            file: StaticString = #filePath, line: UInt = #line) throws -> ByteBuffer {
        guard case .reply(let bytes) = outcome else {
            XCTFail("expected a reply, got \(outcome)", file: file, line: line)
            throw UnexpectedOutcome()
        }
        return bytes
    }

    /// Parsing throws `error`, and the responder answers with a bare FORMERR header.
    private func assertMalformed(_ datagram: ByteBuffer, _ error: DNSMessageError,
                                 file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try DNSQuery(parsing: datagram), file: file, line: line) {
            XCTAssertEqual($0 as? DNSMessageError, error, file: file, line: line)
        }
        guard case .reply(let reply) = responder.answer(datagram) else {
            return XCTFail("expected FORMERR", file: file, line: line)
        }
        XCTAssertEqual(Array(reply.readableBytesView), [0xBE, 0xEF, 0x81, 0x01, 0, 0, 0, 0, 0, 0, 0, 0],
                       file: file, line: line)
    }

    private func rcode(_ outcome: DNSResponder.Outcome) -> UInt16? {
        guard case .reply(let reply) = outcome else { return nil }
        return flags(reply) & 0x000F
    }

    private func flags(_ reply: ByteBuffer) -> UInt16 { reply.getInteger(at: 2, as: UInt16.self) ?? 0xFFFF }

    /// QDCOUNT, ANCOUNT, NSCOUNT, ARCOUNT.
    private func counts(_ reply: ByteBuffer) -> [UInt16] {
        (0..<4).map { reply.getInteger(at: 4 + 2 * $0, as: UInt16.self) ?? 0xFFFF }
    }

    /// The TYPE of each answer, reading the answers' fixed layout after the echoed question.
    private func answerTypes(_ reply: ByteBuffer) -> [UInt16] {
        var buffer = reply
        buffer.moveReaderIndex(forwardBy: 12)
        guard (try? DNSQuestion(reading: &buffer)) != nil else { return [] }
        return (0..<Int(counts(reply)[1])).compactMap { _ in
            guard let pointer = buffer.readInteger(as: UInt16.self), pointer == 0xC00C,
                  let type = buffer.readInteger(as: UInt16.self),
                  buffer.readInteger(as: UInt16.self) != nil, buffer.readInteger(as: UInt32.self) != nil,
                  let length = buffer.readInteger(as: UInt16.self), buffer.readSlice(length: Int(length)) != nil
            else { return nil }
            return type
        }
    }
}
