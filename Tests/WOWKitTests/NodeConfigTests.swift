import Foundation
import XCTest
import Plugins
import Yams
@testable import WOWKit

final class NodeConfigTests: XCTestCase {
    // MARK: Valid configs

    func testFullConfigParsesToItsValues() throws {
        let yaml = """
            node:
              name: alpha
              address: 00112233445566778899aabbccddeeff00112233
            bootstrap:
              - memory://1:1
              - udp://198.18.0.1:4000
            transports:
              - scheme: memory
                settings: {}
              - scheme: udp
                settings:
                  port: 4000
            overlords:
              - name: leaf
              - name: structured.near
                settings: { per_side: 2 }
              - name: structured.far
            linking:
              reply_timeout_ms: 500
              attempts_per_uri: 5
              retry_backoff_ms: 100
              race_delay_ms: 100
              relay_after_ms: 2500
              direct_retry_s: 60
              punch_ttl: 3
              punch_hold_ms: 250
            liveness:
              ping_interval_s: 10
              dead_after_s: 25
              failover_after_ms: 700
            limits:
              max_connections: 128
              shared_neighbours_per_side: 4
            """
        let config = try NodeConfig(yaml: yaml, file: "alpha.yml")
        XCTAssertEqual(config.name, "alpha")
        XCTAssertEqual(config.address, Address(hex: "00112233445566778899aabbccddeeff00112233"))
        XCTAssertEqual(config.bootstrap.map(\.text), ["memory://1:1", "udp://198.18.0.1:4000"])
        XCTAssertEqual(config.transports.map(\.name), ["memory", "udp"])
        XCTAssertEqual(config.transports[0].settings.node, Yams.Node.mapping([:]))
        XCTAssertEqual(config.transports[1].settings.node?["port"]?.int, 4000)
        XCTAssertEqual(config.overlords.map(\.name), ["leaf", "structured.near", "structured.far"])
        XCTAssertNil(config.overlords[0].settings.node)
        XCTAssertEqual(config.overlords[1].settings.node?["per_side"]?.int, 2)
        XCTAssertEqual(config.linking.replyTimeout, .milliseconds(500))
        XCTAssertEqual(config.linking.attemptsPerURI, 5)
        XCTAssertEqual(config.linking.retryBackoff, .milliseconds(100))
        XCTAssertEqual(config.linking.raceDelay, .milliseconds(100))
        XCTAssertEqual(config.linking.relayAfter, .milliseconds(2500))
        XCTAssertEqual(config.linking.directRetryInterval, .seconds(60))
        XCTAssertEqual(config.linking.punchTTL, 3)
        XCTAssertEqual(config.linking.punchHold, .milliseconds(250))
        XCTAssertEqual(config.liveness.pingInterval, .seconds(10))
        XCTAssertEqual(config.liveness.deadAfter, .seconds(25))
        XCTAssertEqual(config.liveness.failoverAfter, .milliseconds(700))
        XCTAssertEqual(config.maximumConnections, 128)
        XCTAssertEqual(config.sharedNeighboursPerSide, 4)

        // Entries remember where they were written, for errors found later.
        let near = try XCTUnwrap(config.overlords[1].origin)
        XCTAssertEqual(near.file, "alpha.yml")
        XCTAssertEqual(near.key, "overlords[1]")
        XCTAssertEqual(near.entry.line, 15)
        XCTAssertEqual(near.name, ConfigError.Position(line: 15, column: 11))
        XCTAssertEqual(near.settings?.line, 16)
        XCTAssertNil(config.overlords[0].origin?.settings)
    }

    func testAbsentSectionsTakeTheirDefaults() throws {
        let yaml = """
            node:
              name: beta
            transports:
              - scheme: memory
            """
        let config = try NodeConfig(yaml: yaml, defaultOverlords: PluginCatalog.defaultOverlordNames)
        // The core names no overlord: without the program's defaults, a config without the section runs none.
        XCTAssertEqual(try NodeConfig(yaml: yaml).overlords.map(\.name), [])
        let defaults = NodeConfig(name: "beta", transports: [], overlords: [], bootstrap: [])
        XCTAssertEqual(config.name, "beta")
        XCTAssertNil(config.address)
        XCTAssertEqual(config.resolvedAddress, Address.hashing("wow-node:beta"))
        XCTAssertEqual(config.bootstrap, [])
        XCTAssertEqual(config.transports.map(\.name), ["memory"])
        XCTAssertNil(config.transports[0].settings.node)
        XCTAssertEqual(config.overlords.map(\.name), ["leaf", "structured.near", "structured.far", "structured.shortcut"])
        XCTAssertEqual(config.linking, defaults.linking)
        XCTAssertEqual(config.linking.replyTimeout, .milliseconds(1000))
        XCTAssertEqual(config.linking.attemptsPerURI, 3)
        XCTAssertEqual(config.linking.retryBackoff, .milliseconds(250))
        XCTAssertEqual(config.linking.punchTTL, 2)
        XCTAssertEqual(config.linking.punchHold, .milliseconds(500))
        XCTAssertEqual(config.liveness.pingInterval, .seconds(15))
        XCTAssertEqual(config.liveness.deadAfter, .seconds(30))
        XCTAssertEqual(config.liveness.failoverAfter, .seconds(1))
        XCTAssertEqual(config.maximumConnections, 256)
        XCTAssertEqual(config.sharedNeighboursPerSide, 3)
    }

    func testEmptySectionsAndPartialSectionsKeepDefaults() throws {
        let config = try NodeConfig(yaml: """
            node: { name: gamma }
            bootstrap:
            transports: [ { scheme: memory, settings: ~ } ]
            overlords: []
            linking:
              attempts_per_uri: 7
            liveness:
            limits: {}
            """)
        XCTAssertEqual(config.bootstrap, [])
        XCTAssertNil(config.transports[0].settings.node)
        XCTAssertEqual(config.overlords.count, 0, "an explicit empty list means no overlords")
        XCTAssertEqual(config.linking.attemptsPerURI, 7)
        XCTAssertEqual(config.linking.replyTimeout, .milliseconds(1000))
        XCTAssertEqual(config.liveness, NodeConfig.Liveness())
        XCTAssertEqual(config.maximumConnections, 256)
    }

    func testConfigIsReadFromAFile() throws {
        let path = FileManager.default.temporaryDirectory
            .appendingPathComponent("wow-config-\(UUID().uuidString).yml").path
        try "node: { name: delta }\ntransports: [ { scheme: memory } ]\n".write(
            toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        XCTAssertEqual(try NodeConfig(contentsOfFile: path).name, "delta")

        try "node: { name: delta }\n".write(toFile: path, atomically: true, encoding: .utf8)
        let error = try XCTUnwrap(parseError { try NodeConfig(contentsOfFile: path) })
        XCTAssertEqual(error.file, path, "errors name the file they came from")
        XCTAssertEqual(error.key, "transports")
    }

    // MARK: The error's form

    func testDescriptionReadsLikeACompilerDiagnostic() {
        let error = ConfigError(file: "a.yml", line: 7, column: 3, key: "overlords[1].name", reason: "bad")
        XCTAssertEqual(error.description, "a.yml:7:3: overlords[1].name: bad")
        XCTAssertEqual(ConfigError(file: "a.yml", line: nil, column: 4, key: "", reason: "gone").description,
                       "a.yml: gone")
    }

    // MARK: Errors: the file as a whole

    func testEmptyFileIsRefused() {
        for text in ["", "\n\n", "# only a comment\n", "---\n", "~\n"] {
            let error = parseError(text)
            XCTAssertEqual(error?.line, nil, text)
            XCTAssertEqual(error?.key, "", text)
            XCTAssertTrue(error?.reason.contains("the file is empty") ?? false, "\(text): \(String(describing: error))")
        }
    }

    func testMissingFileIsRefusedWithThePath() {
        let error = parseError { try NodeConfig(contentsOfFile: "/nonexistent/wow.yml") }
        XCTAssertEqual(error?.file, "/nonexistent/wow.yml")
        XCTAssertNil(error?.line)
        XCTAssertTrue(error?.reason.contains("cannot read the file") ?? false, String(describing: error))
    }

    func testYAMLSyntaxErrorCarriesYamsLine() {
        let error = parseError("""
            node:
              name: alpha
            transports:
              - scheme: memory
                settings: { port: 4000
            limits:
              max_connections: 10
            """)
        XCTAssertEqual(error?.key, "")
        XCTAssertEqual(error?.line, 6)
        XCTAssertTrue(error?.reason.hasPrefix("invalid YAML:") ?? false, String(describing: error))
    }

    func testSyntaxErrorAtTheEndOfAFileWithoutALastLineBreakNamesTheLastLine() {
        // libyaml marks the end of such a text on the line after the last (found by `Scripts/fuzz.sh config`).
        let error = parseError("transports: []\nnode: { name: alpha")
        XCTAssertEqual(error?.line, 2)
        XCTAssertEqual(error?.column, 20)
        XCTAssertTrue(error?.reason.contains("did not find expected ',' or '}'") ?? false, String(describing: error))
        let withBreak = parseError("transports: []\nnode: { name: alpha\n")
        XCTAssertEqual(withBreak?.line, 3, "after a final line break, the empty line after it is the end")
        XCTAssertEqual(withBreak?.column, 1)
    }

    func testTabIndentationIsExplained() {
        let error = parseError("node:\n  name: alpha\ntransports:\n\t- scheme: memory\n")
        XCTAssertEqual(error?.line, 4)
        XCTAssertTrue(error?.reason.contains("spaces, not tabs") ?? false, String(describing: error))
    }

    func testDuplicateYAMLKeyIsRefused() {
        let error = parseError("""
            node:
              name: alpha
              name: beta
            transports: [ { scheme: memory } ]
            """)
        XCTAssertEqual(error?.key, "name")
        XCTAssertEqual(error?.line, 2)
        XCTAssertTrue(error?.reason.contains("more than once") ?? false, String(describing: error))
    }

    func testTopLevelMustBeAMapping() {
        let error = parseError("- node\n- transports\n")
        XCTAssertEqual(error?.key, "")
        XCTAssertEqual(error?.line, 1)
        XCTAssertTrue(error?.reason.contains("expected a mapping with keys 'node'") ?? false, String(describing: error))
    }

    // MARK: Errors: unknown keys

    func testUnknownTopLevelKeySuggestsTheIntendedOne() {
        let error = parseError("""
            node:
              name: alpha
            transports:
              - scheme: memory
            overlord:
              - name: leaf
            """)
        XCTAssertEqual(error?.key, "overlord")
        XCTAssertEqual(error?.line, 5)
        XCTAssertEqual(error?.column, 1)
        XCTAssertTrue(error?.reason.contains("unknown key 'overlord'") ?? false, String(describing: error))
        XCTAssertTrue(error?.reason.contains("did you mean 'overlords'?") ?? false, String(describing: error))
        XCTAssertTrue(error?.reason.contains("node, bootstrap, transports, overlords, linking, liveness, limits") ?? false)
    }

    func testUnknownKeyInsideASectionIsRefused() {
        let error = parseError("""
            node:
              name: alpha
            transports:
              - scheme: memory
            linking:
              reply_timeout: 100
            """)
        XCTAssertEqual(error?.key, "linking.reply_timeout")
        XCTAssertEqual(error?.line, 6)
        XCTAssertTrue(error?.reason.contains("did you mean 'reply_timeout_ms'?") ?? false, String(describing: error))
        XCTAssertTrue(error?.reason.contains("allowed in 'linking': reply_timeout_ms, attempts_per_uri, retry_backoff_ms") ?? false)
    }

    func testUnknownKeyInAListEntryIsRefused() {
        let error = parseError("""
            node:
              name: alpha
            transports:
              - scheme: memory
                setting: { port: 1 }
            """)
        XCTAssertEqual(error?.key, "transports[0].setting")
        XCTAssertEqual(error?.line, 5)
        XCTAssertTrue(error?.reason.contains("did you mean 'settings'?") ?? false, String(describing: error))
    }

    // MARK: Errors: types

    func testNonIntegerIsRefused() {
        let error = parseError(minimal + """
            liveness:
              ping_interval_s: abc
            """)
        XCTAssertEqual(error?.key, "liveness.ping_interval_s")
        XCTAssertEqual(error?.line, 6)
        XCTAssertEqual(error?.column, 20)
        XCTAssertTrue(error?.reason.contains("expected an integer (seconds), got 'abc'") ?? false, String(describing: error))
    }

    func testFractionIsRefusedWhereAnIntegerIsExpected() {
        let error = parseError(minimal + "limits: { max_connections: 12.5 }\n")
        XCTAssertEqual(error?.key, "limits.max_connections")
        XCTAssertEqual(error?.line, 5)
        XCTAssertTrue(error?.reason.contains("expected an integer (connections), got '12.5'") ?? false)
    }

    func testSectionThatIsNotAMappingIsRefused() {
        let error = parseError("node: alpha\ntransports: [ { scheme: memory } ]\n")
        XCTAssertEqual(error?.key, "node")
        XCTAssertEqual(error?.line, 1)
        XCTAssertTrue(error?.reason.contains("expected a mapping with keys 'name', 'address', got 'alpha'") ?? false,
                      String(describing: error))
    }

    func testTransportsThatIsNotAListIsRefused() {
        let error = parseError("node: { name: alpha }\ntransports: memory\n")
        XCTAssertEqual(error?.key, "transports")
        XCTAssertEqual(error?.line, 2)
        XCTAssertTrue(error?.reason.contains("expected a list of transports, got 'memory'") ?? false)
    }

    func testEntryThatIsNotAMappingIsRefused() {
        let error = parseError("node: { name: alpha }\ntransports:\n  - memory\n")
        XCTAssertEqual(error?.key, "transports[0]")
        XCTAssertEqual(error?.line, 3)
        XCTAssertTrue(error?.reason.contains("expected a mapping with 'scheme' and optional 'settings', got 'memory'") ?? false)
    }

    func testNameThatIsNotAStringIsRefused() {
        let error = parseError("node:\n  name: [a, b]\ntransports: [ { scheme: memory } ]\n")
        XCTAssertEqual(error?.key, "node.name")
        XCTAssertEqual(error?.line, 2)
        XCTAssertTrue(error?.reason.contains("expected a string, got a list") ?? false)
    }

    func testSettingsThatAreNotAMappingAreRefused() {
        let error = parseError(minimal + """
            overlords:
              - name: leaf
                settings: [1, 2]
            """)
        XCTAssertEqual(error?.key, "overlords[0].settings")
        XCTAssertEqual(error?.line, 7)
        XCTAssertTrue(error?.reason.contains("expected a mapping of the overlord's settings, got a list") ?? false)
    }

    func testBootstrapThatIsNotAListIsRefused() {
        let error = parseError(minimal + "bootstrap: memory://1:1\n")
        XCTAssertEqual(error?.key, "bootstrap")
        XCTAssertEqual(error?.line, 5)
        XCTAssertTrue(error?.reason.contains("expected a list of transport URIs, got 'memory://1:1'") ?? false)
    }

    // MARK: Errors: ranges

    func testOutOfRangeValuesAreRefused() {
        let cases: [(String, String, String)] = [
            ("linking: { reply_timeout_ms: 0 }", "linking.reply_timeout_ms", "0 is out of range"),
            ("linking: { attempts_per_uri: 21 }", "linking.attempts_per_uri", "from 1 to 20"),
            ("linking: { retry_backoff_ms: -1 }", "linking.retry_backoff_ms", "-1 is out of range"),
            ("linking: { direct_retry_s: 0 }", "linking.direct_retry_s", "0 is out of range"),
            ("linking: { punch_ttl: 256 }", "linking.punch_ttl", "256 is out of range"),
            ("linking: { punch_hold_ms: 60001 }", "linking.punch_hold_ms", "60001 is out of range"),
            ("linking: { race_delay_ms: 60001 }", "linking.race_delay_ms", "60001 is out of range"),
            ("linking: { relay_after_ms: -1 }", "linking.relay_after_ms", "-1 is out of range"),
            ("liveness: { ping_interval_s: 0 }", "liveness.ping_interval_s", "0 is out of range"),
            ("liveness: { failover_after_ms: 600001 }", "liveness.failover_after_ms", "600001 is out of range"),
            ("liveness: { failover_after_ms: -5 }", "liveness.failover_after_ms", "-5 is out of range"),
            ("limits: { max_connections: 3 }", "limits.max_connections", "from 4 to 65535"),
            ("limits: { max_connections: 65536 }", "limits.max_connections", "65536 is out of range"),
            ("limits: { shared_neighbours_per_side: 9 }", "limits.shared_neighbours_per_side", "from 1 to 8"),
        ]
        for (line, key, reason) in cases {
            let error = parseError(minimal + line + "\n")
            XCTAssertEqual(error?.key, key, line)
            XCTAssertEqual(error?.line, 5, line)
            XCTAssertTrue(error?.reason.contains(reason) ?? false, "\(line): \(String(describing: error))")
        }
    }

    func testDeadAfterMustExceedPingInterval() {
        let error = parseError(minimal + """
            liveness:
              ping_interval_s: 20
              dead_after_s: 20
            """)
        XCTAssertEqual(error?.key, "liveness.dead_after_s")
        XCTAssertEqual(error?.line, 7)
        XCTAssertTrue(error?.reason.contains("dead_after_s (20) must exceed ping_interval_s (20)") ?? false,
                      String(describing: error))
        XCTAssertTrue(error?.reason.contains("e.g. 40") ?? false)

        // Against the other's default, the error points at the key that was written.
        let againstDefault = parseError(minimal + "liveness:\n  ping_interval_s: 60\n")
        XCTAssertEqual(againstDefault?.key, "liveness.ping_interval_s")
        XCTAssertEqual(againstDefault?.line, 6)
        XCTAssertTrue(againstDefault?.reason.contains("dead_after_s (the default 30) must exceed ping_interval_s (60)") ?? false,
                      String(describing: againstDefault))
    }

    func testNodeNameLengthIsChecked() {
        let long = String(repeating: "n", count: 65)
        let error = parseError("node:\n  name: \(long)\ntransports: [ { scheme: memory } ]\n")
        XCTAssertEqual(error?.key, "node.name")
        XCTAssertEqual(error?.line, 2)
        XCTAssertTrue(error?.reason.contains("65 characters long") ?? false)

        let empty = parseError("node:\n  name: ''\ntransports: [ { scheme: memory } ]\n")
        XCTAssertEqual(empty?.key, "node.name")
        XCTAssertTrue(empty?.reason.contains("the node name is empty") ?? false, String(describing: empty))
    }

    // MARK: Errors: missing keys

    func testMissingNodeNameIsRefused() {
        let error = parseError("""
            node:
              address: 00112233445566778899aabbccddeeff00112233
            transports: [ { scheme: memory } ]
            """)
        XCTAssertEqual(error?.key, "node.name")
        XCTAssertEqual(error?.line, 1, "points at the section that lacks it")
        XCTAssertTrue(error?.reason.contains("missing required key 'name'") ?? false, String(describing: error))
    }

    func testNodeNameWithoutValueIsRefused() {
        let error = parseError("node:\n  name:\ntransports: [ { scheme: memory } ]\n")
        XCTAssertEqual(error?.key, "node.name")
        XCTAssertEqual(error?.line, 2)
        XCTAssertTrue(error?.reason.contains("'name' has no value") ?? false, String(describing: error))
    }

    func testMissingTransportsIsRefused() {
        let error = parseError("node:\n  name: alpha\n")
        XCTAssertEqual(error?.key, "transports")
        XCTAssertEqual(error?.line, 1)
        XCTAssertTrue(error?.reason.contains("missing required key 'transports'") ?? false)
        XCTAssertTrue(error?.reason.contains("scheme: udp") ?? false, "says what to write")
    }

    func testEmptyTransportListIsRefused() {
        let error = parseError("node: { name: alpha }\ntransports: []\n")
        XCTAssertEqual(error?.key, "transports")
        XCTAssertEqual(error?.line, 2)
        XCTAssertTrue(error?.reason.contains("at least one transport") ?? false)
    }

    func testMissingNodeSectionIsRefused() {
        let error = parseError("transports: [ { scheme: memory } ]\n")
        XCTAssertEqual(error?.key, "node")
        XCTAssertEqual(error?.line, 1)
        XCTAssertTrue(error?.reason.contains("missing required key 'node'") ?? false)
    }

    func testOverlordWithoutNameIsRefused() {
        let error = parseError(minimal + """
            overlords:
              - name: leaf
              - settings: { per_side: 2 }
            """)
        XCTAssertEqual(error?.key, "overlords[1].name")
        XCTAssertEqual(error?.line, 7)
        XCTAssertTrue(error?.reason.contains("missing required key 'name'") ?? false, String(describing: error))
    }

    // MARK: Errors: URIs, addresses, names

    func testInvalidBootstrapURIIsRefusedWithTheURIError() {
        let error = parseError(minimal + """
            bootstrap:
              - memory://1:1
              - udp:198.18.0.1:4000
            """)
        XCTAssertEqual(error?.key, "bootstrap[1]")
        XCTAssertEqual(error?.line, 7)
        XCTAssertEqual(error?.column, 5)
        XCTAssertEqual(error?.reason, TransportURI.ParseError.missingScheme("udp:198.18.0.1:4000").description)
    }

    /// A bootstrap entry may name the node's handshake key (`wow keygen` and `wow status` print it).
    func testABootstrapEntryMayNameTheNodesHandshakeKey() throws {
        let key = String(repeating: "ab", count: 32)
        let config = try NodeConfig(yaml: minimal + """
            bootstrap:
              - memory://1:1
              - {uri: "udp://198.18.0.1:4000", handshake_key: \(key)}
              - uri: tls://198.18.0.1:443
            """)
        XCTAssertEqual(config.bootstrap.map(\.text), ["memory://1:1", "udp://198.18.0.1:4000", "tls://198.18.0.1:443"])
        XCTAssertEqual(config.bootstrapHandshakeKeys, [try TransportURI("udp://198.18.0.1:4000"): [UInt8](repeating: 0xab, count: 32)])
    }

    func testABadBootstrapEntryGetsASpecificError() {
        let cases: [(String, String, String)] = [
            ("- {uri: udp://198.18.0.1:4000, handshake_key: abcd}", "bootstrap[0].handshake_key", "not a handshake key: expected 64 hex digits"),
            ("- {uri: udp://198.18.0.1:4000, handshake_key: \(String(repeating: "zz", count: 32))}", "bootstrap[0].handshake_key", "64 hex digits"),
            ("- {handshake_key: \(String(repeating: "ab", count: 32))}", "bootstrap[0].uri", "missing required key 'uri'"),
            ("- {uri: udp://198.18.0.1:4000, key: abcd}", "bootstrap[0].key", "unknown key 'key'"),
            ("- {uri: 'udp:198.18.0.1:4000'}", "bootstrap[0].uri", "scheme"),
            ("- {uri: [a, b]}", "bootstrap[0].uri", "expected a string"),
        ]
        for (entry, key, reason) in cases {
            let error = parseError(minimal + "bootstrap:\n  " + entry + "\n")
            XCTAssertEqual(error?.key, key, entry)
            XCTAssertTrue(error?.reason.contains(reason) == true, "\(entry): \(String(describing: error))")
        }
    }

    func testBadAddressIsRefused() {
        for address in ["0011223344556677889", "zz112233445566778899aabbccddeeff00112233"] {
            let error = parseError("node:\n  name: alpha\n  address: \(address)\ntransports: [ { scheme: memory } ]\n")
            XCTAssertEqual(error?.key, "node.address", address)
            XCTAssertEqual(error?.line, 3, address)
            XCTAssertTrue(error?.reason.contains("'\(address)' is not a ring address") ?? false, String(describing: error))
            XCTAssertTrue(error?.reason.contains("40 hex digits") ?? false)
        }
    }

    func testBadSchemeNameIsRefused() {
        let error = parseError("node: { name: alpha }\ntransports:\n  - scheme: UDP\n")
        XCTAssertEqual(error?.key, "transports[0].scheme")
        XCTAssertEqual(error?.line, 3)
        XCTAssertEqual(error?.reason, TransportURI.ParseError.badScheme("UDP").description)
    }

    func testBadOverlordNameIsRefused() {
        let error = parseError(minimal + "overlords:\n  - name: Structured Near\n")
        XCTAssertEqual(error?.key, "overlords[0].name")
        XCTAssertEqual(error?.line, 6)
        XCTAssertTrue(error?.reason.contains("not a valid overlord name") ?? false)
    }

    // MARK: Errors: duplicates

    func testDuplicateTransportSchemeIsRefused() {
        let error = parseError("""
            node: { name: alpha }
            transports:
              - scheme: udp
                settings: { port: 4000 }
              - scheme: memory
              - scheme: udp
                settings: { port: 4001 }
            """)
        XCTAssertEqual(error?.key, "transports[2].scheme")
        XCTAssertEqual(error?.line, 6)
        XCTAssertTrue(error?.reason.contains("transport 'udp' is already configured at line 3 (transports[0])") ?? false,
                      String(describing: error))
        XCTAssertTrue(error?.reason.contains("merge") ?? false)
    }

    func testDuplicateOverlordNameIsRefused() {
        let error = parseError(minimal + """
            overlords:
              - name: leaf
              - name: structured.near
              - name: leaf
            """)
        XCTAssertEqual(error?.key, "overlords[2].name")
        XCTAssertEqual(error?.line, 8)
        XCTAssertTrue(error?.reason.contains("overlord 'leaf' is already configured at line 6 (overlords[0])") ?? false,
                      String(describing: error))
    }

    // MARK: Validation against registries

    func testValidationAcceptsRegisteredPluginsWithGoodSettings() throws {
        let config = try NodeConfig(yaml: minimal + """
            overlords:
              - name: test.near
                settings: { per_side: 2 }
            """)
        XCTAssertNoThrow(try config.validate(transports: Self.transports, overlords: Self.overlords))
    }

    func testValidationRefusesUnknownScheme() throws {
        let config = try NodeConfig(yaml: """
            node: { name: alpha }
            transports:
              - scheme: memory
              - scheme: udpp
            overlords: []
            """, file: "a.yml")
        let error = validationError(config)
        XCTAssertEqual(error?.file, "a.yml")
        XCTAssertEqual(error?.key, "transports[1].scheme")
        XCTAssertEqual(error?.line, 4)
        XCTAssertTrue(error?.reason.contains("unknown transport 'udpp' (did you mean 'udp'?)") ?? false,
                      String(describing: error))
        XCTAssertTrue(error?.reason.contains("known: memory, udp") ?? false)
    }

    func testValidationRefusesUnknownOverlord() throws {
        let config = try NodeConfig(yaml: minimal + """
            overlords:
              - name: test.near
              - name: structured.far
            """)
        let error = validationError(config)
        XCTAssertEqual(error?.key, "overlords[1].name")
        XCTAssertEqual(error?.line, 7)
        XCTAssertTrue(error?.reason.contains("unknown overlord 'structured.far'; known: test.near") ?? false,
                      String(describing: error))
    }

    func testValidationReportsUndecodableSettingsAtTheirLine() throws {
        let config = try NodeConfig(yaml: minimal + """
            overlords:
              - name: test.near
                settings:
                  per_side: many
            """, file: "b.yml")
        let error = validationError(config)
        XCTAssertEqual(error?.file, "b.yml")
        XCTAssertEqual(error?.key, "overlords[0].settings")
        XCTAssertEqual(error?.line, 8, "the settings mapping starts on the line of its first key")
        XCTAssertTrue(error?.reason.contains("settings of 'test.near'") ?? false, String(describing: error))
        XCTAssertTrue(error?.reason.contains("per_side") ?? false, String(describing: error))
    }

    func testValidationReportsSettingsThePluginRefuses() throws {
        let config = try NodeConfig(yaml: minimal + """
            overlords:
              - name: test.near
                settings: { per_side: 0 }
            """)
        let error = validationError(config)
        XCTAssertEqual(error?.key, "overlords[0].settings")
        XCTAssertEqual(error?.line, 7)
        XCTAssertTrue(error?.reason.contains("per_side must be at least 1") ?? false, String(describing: error))
    }

    func testDefaultOverlordsAreTheShippedOnes() throws {
        var overlords = OverlordRegistry()
        PluginCatalog.registerOverlords(in: &overlords)
        let config = try NodeConfig(yaml: minimal)
        XCTAssertNoThrow(try config.validate(transports: Self.transports, overlords: overlords))
    }

    func testEntriesBuiltInCodeGetErrorsWithoutALine() {
        let config = NodeConfig(name: "alpha", transports: [.init(name: "tcp")], overlords: [], bootstrap: [])
        let error = validationError(config)
        XCTAssertEqual(error?.key, "transports[0].scheme")
        XCTAssertNil(error?.line)
    }

    // MARK: Helpers

    /// Lines 1-4; what tests append starts at line 5.
    private let minimal = """
        node:
          name: alpha
        transports:
          - scheme: memory

        """

    private func parseError(_ yaml: String, file: StaticString = #filePath, line: UInt = #line) -> ConfigError? {
        parseError(file: file, line: line) { try NodeConfig(yaml: yaml) }
    }

    private func parseError(file: StaticString = #filePath, line: UInt = #line,
                            _ body: () throws -> NodeConfig) -> ConfigError? {
        do {
            let config = try body()
            XCTFail("expected a ConfigError, parsed \(config.name)", file: file, line: line)
            return nil
        } catch let error as ConfigError {
            return error
        } catch {
            XCTFail("expected a ConfigError, got \(error)", file: file, line: line)
            return nil
        }
    }

    private func validationError(_ config: NodeConfig, file: StaticString = #filePath,
                                 line: UInt = #line) -> ConfigError? {
        do {
            try config.validate(transports: Self.transports, overlords: Self.overlords)
            XCTFail("expected a ConfigError", file: file, line: line)
            return nil
        } catch {
            return error
        }
    }

    private struct NotBuiltInTests: Error {}

    private static var transports: TransportRegistry {
        var registry = TransportRegistry()
        registry.register(scheme: "memory") { _, _ in throw NotBuiltInTests() }
        registry.register(scheme: "udp") { _, _ in throw NotBuiltInTests() }
        return registry
    }

    private static var overlords: OverlordRegistry {
        var registry = OverlordRegistry()
        registry.register(TestNearOverlord.self)
        return registry
    }
}

/// An overlord with typed settings, to check that validation decodes them.
private final class TestNearOverlord: ConnectionOverlord, OverlordPlugin {
    struct Settings: Decodable {
        var perSide: Int
        enum CodingKeys: String, CodingKey { case perSide = "per_side" }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            perSide = try container.decodeIfPresent(Int.self, forKey: .perSide) ?? 1
        }
    }

    struct Refused: Error, CustomStringConvertible {
        var description: String { "per_side must be at least 1" }
    }

    static let name = "test.near"
    let connectionType: ConnectionType = "test.near"
    let tickInterval: Duration = .seconds(1)

    static func makeOverlord(settings: Settings) throws -> any ConnectionOverlord {
        guard settings.perSide >= 1 else { throw Refused() }
        return TestNearOverlord()
    }

    func handle(_ event: OverlordEvent, context: inout OverlordContext) -> [OverlordAction] { [] }
}
