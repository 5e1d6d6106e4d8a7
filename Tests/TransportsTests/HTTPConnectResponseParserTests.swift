import NIOCore
@testable import Transports
import XCTest

/// The proxy answer parser on its own: whole answers, answers in pieces, what follows an answer, and the
/// malformed ones (garbage, a bad status line or header line, a header that never ends).
final class HTTPConnectResponseParserTests: XCTestCase {
    typealias Parser = HTTPConnectResponseParser

    /// Feeds `chunks` one after another; the answer (if any) and the bytes left after it.
    private func parse(_ chunks: [String]) throws(Parser.Failure) -> (answer: Parser.Answer?, rest: String) {
        var parser = Parser()
        var rest = ""
        for chunk in chunks {
            var buffer = ByteBuffer(string: chunk)
            if let answer = try parser.parse(&buffer) {
                rest = String(buffer: buffer)
                return (answer, rest)
            }
            XCTAssertEqual(buffer.readableBytes, 0, "an incomplete answer consumes all it is given")
        }
        return (nil, rest)
    }

    private func failure(_ chunks: [String]) -> Parser.Failure? {
        do {
            _ = try parse(chunks)
            return nil
        } catch {
            return error
        }
    }

    func testWholeAnswerStopsAtItsBlankLineAndLeavesTheTunnelsBytes() throws {
        let (answer, rest) = try parse(["HTTP/1.1 200 Connection established\r\nProxy-agent: tinyproxy/1.11.1\r\n\r\n\u{16}\u{03}\u{01}"])
        XCTAssertEqual(answer, Parser.Answer(status: 200, reason: "Connection established"))
        XCTAssertEqual(answer?.isSuccess, true)
        XCTAssertEqual(rest, "\u{16}\u{03}\u{01}")
    }

    func testAnswerFedByteByByte() throws {
        let text = "HTTP/1.0 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"x\"\r\n\r\n"
        let (answer, rest) = try parse(text.map { String($0) })
        XCTAssertEqual(answer, Parser.Answer(status: 407, reason: "Proxy Authentication Required"))
        XCTAssertEqual(answer?.isSuccess, false)
        XCTAssertEqual(rest, "")
    }

    func testBareLineFeedsStatusWithoutReasonAndFoldedHeaders() throws {
        XCTAssertEqual(try parse(["HTTP/1.1 200\n\n"]).answer, Parser.Answer(status: 200, reason: ""))
        XCTAssertEqual(try parse(["HTTP/1.1 204 \r\nX-A: 1\r\n  continued\r\n\r\n"]).answer, Parser.Answer(status: 204, reason: ""))
    }

    func testInformationalAnswersAreSkipped() throws {
        let (answer, rest) = try parse(["HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n", "\r\nX"])
        XCTAssertEqual(answer, Parser.Answer(status: 200, reason: "OK"))
        XCTAssertEqual(rest, "X")
    }

    func testControlCharactersInTheReasonAreReplaced() throws {
        XCTAssertEqual(try parse(["HTTP/1.1 403 No\u{1b}[31m way\r\n\r\n"]).answer?.reason, "No?[31m way")
    }

    func testGarbageFailsAtOnce() {
        var parser = Parser()
        var buffer = ByteBuffer(string: "SSH-2.0-OpenSSH_9.2")
        XCTAssertThrowsError(try parser.parse(&buffer)) { error in
            XCTAssertEqual(error as? Parser.Failure, .notHTTP(firstBytes: "S"))
        }
        XCTAssertGreaterThan(buffer.readableBytes, 0, "it stops at the first byte that cannot be HTTP")
        var more = ByteBuffer(string: "HTTP/1.1 200 OK\r\n\r\n")
        XCTAssertThrowsError(try parser.parse(&more)) { error in
            XCTAssertEqual(error as? Parser.Failure, .alreadyFailed)
        }
    }

    func testMalformedStatusLines() {
        for text in ["HTTP/2 200 OK\r\n", "HTTP/1.1 20 OK\r\n", "HTTP/1.1 2000 OK\r\n", "HTTP/1.1 abc OK\r\n",
                     "HTTP/1.1  200 OK\r\n", "HTTP/1.1 099 Low\r\n", "HTTP/1.\r\n", "\r\n", "\u{0}\u{0}\u{0}"] {
            guard case .notHTTP = failure([text]) else {
                return XCTFail("'\(text.debugDescription)' gave \(String(describing: failure([text])))")
            }
        }
    }

    func testHeaderLineWithoutColonFails() {
        XCTAssertEqual(failure(["HTTP/1.1 200 OK\r\nthis is not a header\r\n\r\n"]), .badHeaderLine("this is not a header"))
    }

    func testOverlongHeaderFails() {
        let header = "HTTP/1.1 200 OK\r\n" + String(repeating: "X-Padding: 0123456789abcdef\r\n", count: 1000)
        XCTAssertEqual(failure([header, "\r\n"]), .headerTooLong(limit: Parser.maximumHeaderBytes))
        // One endless line fails the same way, without waiting for its end.
        XCTAssertEqual(failure(["HTTP/1.1 200 " + String(repeating: "a", count: Parser.maximumHeaderBytes)]),
                       .headerTooLong(limit: Parser.maximumHeaderBytes))
    }

    func testIncompleteAnswerWaitsAndKeepsTheStatusSoFar() throws {
        var parser = Parser()
        var buffer = ByteBuffer(string: "HTTP/1.1 407 Proxy Authentication Req")
        XCTAssertNil(try parser.parse(&buffer))
        XCTAssertNil(parser.statusSoFar, "no status before the status line is complete")
        buffer = ByteBuffer(string: "uired\r\nProxy-Authenticate: Basic")
        XCTAssertNil(try parser.parse(&buffer))
        XCTAssertEqual(parser.statusSoFar, Parser.Answer(status: 407, reason: "Proxy Authentication Required"))
        buffer = ByteBuffer()
        XCTAssertNil(try parser.parse(&buffer), "an empty read changes nothing")
    }
}
