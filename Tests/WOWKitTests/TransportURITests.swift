import XCTest

@testable import WOWKit

/// Transport URIs (`scheme://rest`) and the connection type names that travel beside them.
final class TransportURITests: XCTestCase {

    // MARK: Valid URIs

    func testValidURIsSplitIntoSchemeAndRest() throws {
        let cases: [(text: String, scheme: String, rest: String)] = [
            ("udp://198.18.0.1:4000", "udp", "198.18.0.1:4000"),
            ("memory://7:1", "memory", "7:1"),
            ("tcp://[2001:db8::1]:443", "tcp", "[2001:db8::1]:443"),
            ("wss+tls://relay.example/path?x=1", "wss+tls", "relay.example/path?x=1"),
            ("x-1.y://a", "x-1.y", "a"),
            ("udp://a://b", "udp", "a://b"),
        ]
        for (text, scheme, rest) in cases {
            let uri = try TransportURI(text)
            XCTAssertEqual(uri.text, text)
            XCTAssertEqual(uri.scheme, scheme)
            XCTAssertEqual(uri.rest, rest)
            XCTAssertEqual(uri.description, text)
        }
    }

    func testLongestAllowedURIParses() throws {
        let prefix = "udp://"
        let text = prefix + String(repeating: "h", count: TransportURI.maximumLength - prefix.utf8.count)
        XCTAssertEqual(text.utf8.count, 255)
        XCTAssertEqual(try TransportURI(text).text, text)
    }

    func testHostAndPort() throws {
        let cases: [(text: String, host: String, port: Int)] = [
            ("udp://198.18.0.1:4000", "198.18.0.1", 4000),
            ("memory://7:1", "7", 1),
            ("tcp://node.example.org:0", "node.example.org", 0),
            ("tcp://node:65535", "node", 65535),
            ("udp://[2001:db8::1]:4000", "2001:db8::1", 4000),
            ("udp://[::1]:9", "::1", 9),
            ("udp://[fe80::1%eth0]:5353", "fe80::1%eth0", 5353),
        ]
        for (text, host, port) in cases {
            let hostAndPort = try XCTUnwrap(try TransportURI(text).hostAndPort, text)
            XCTAssertEqual(hostAndPort.host, host, text)
            XCTAssertEqual(hostAndPort.port, port, text)
        }
    }

    func testHostAndPortIsNilWithoutAHostAndANumericPortInRange() throws {
        for text in [
            "udp://host", "udp://host:", "udp://:4000", "udp://host:port", "udp://host:65536", "udp://host:-1",
            "udp://[::1]", "udp://host:99999999999999999999999",
        ] {
            XCTAssertNil(try TransportURI(text).hostAndPort, text)
        }
    }

    // MARK: Parse errors

    func testEachParseErrorHasAMatchingBadInput() {
        let tooLong = "udp://" + String(repeating: "h", count: 250)
        let cases: [(text: String, error: TransportURI.ParseError)] = [
            ("", .empty),
            (tooLong, .tooLong(256)),
            (String(repeating: " ", count: 300), .tooLong(300)),
            ("udp://a b", .notPrintableASCII),
            ("udp://a\tb", .notPrintableASCII),
            ("udp://\u{7F}", .notPrintableASCII),
            ("udp://ü", .notPrintableASCII),
            (" udp://a", .notPrintableASCII),
            ("udp", .missingScheme("udp")),
            ("udp:/a", .missingScheme("udp:/a")),
            ("198.18.0.1:4000", .missingScheme("198.18.0.1:4000")),
            ("://a", .badScheme("")),
            ("UDP://a", .badScheme("UDP")),
            ("u_p://a", .badScheme("u_p")),
            ("u/p://a", .badScheme("u/p")),
            ("udp://", .missingLocation("udp://")),
        ]
        for (text, expected) in cases {
            XCTAssertThrowsError(try TransportURI(text), "'\(text)'") { error in
                XCTAssertEqual(error as? TransportURI.ParseError, expected, "'\(text)'")
                XCTAssertFalse(String(describing: error).isEmpty)
            }
        }
    }

    func testParseErrorsSayWhatToDo() {
        XCTAssertTrue(TransportURI.ParseError.missingScheme("x").description.contains("scheme://"))
        XCTAssertTrue(TransportURI.ParseError.tooLong(300).description.contains("255"))
    }

    func testURIsCompareAndHashByText() throws {
        let a = try TransportURI("memory://1:0"), b = try TransportURI("udp://1.2.3.4:5")
        XCTAssertLessThan(a, b)
        XCTAssertEqual(try TransportURI("memory://1:0"), a)
        XCTAssertEqual(Set([a, b, try TransportURI("memory://1:0")]).count, 2)
    }

    // MARK: Connection types

    func testValidConnectionTypes() {
        let longest = String(repeating: "z", count: ConnectionType.maximumLength)
        for name in ["leaf", "structured.near", "structured.shortcut", "a", "x_y-z.0", "0", longest] {
            XCTAssertTrue(ConnectionType.isValid(name), name)
            XCTAssertEqual(ConnectionType(validating: name)?.name, name)
        }
        XCTAssertEqual(ConnectionType.leaf.name, "leaf")
        XCTAssertEqual(ConnectionType.leaf.description, "leaf")
        XCTAssertEqual(ConnectionType(validating: "leaf"), .leaf)
    }

    func testInvalidConnectionTypes() {
        let tooLong = String(repeating: "z", count: ConnectionType.maximumLength + 1)
        for name in ["", tooLong, "Leaf", "LEAF", "a b", "a/b", "a:b", "ü", "leaf\n", "a+b"] {
            XCTAssertFalse(ConnectionType.isValid(name), name)
            XCTAssertNil(ConnectionType(validating: name), name)
        }
    }

    func testConnectionTypesOrderByName() {
        XCTAssertLessThan(ConnectionType.leaf, ConnectionType("structured.near"))
        XCTAssertLessThan(ConnectionType("structured.near"), ConnectionType("structured.shortcut"))
    }
}
