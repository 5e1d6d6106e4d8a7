import Plugins
import WOWKit
import XCTest

final class OverlordSettingsTests: XCTestCase {
    private func registry() -> OverlordRegistry {
        var registry = OverlordRegistry()
        PluginCatalog.registerOverlords(in: &registry)
        return registry
    }

    func testBuiltInOverlordsRegisterByName() {
        XCTAssertEqual(registry().names, ["leaf", "structured.far", "structured.near", "structured.shortcut"])
    }

    func testDefaultsApplyWhenSettingsAreEmpty() throws {
        for name in registry().names {
            XCTAssertNoThrow(try registry().makeOverlord(name: name, settings: .empty), name)
        }
        let near = try XCTUnwrap(registry().makeOverlord(name: "structured.near", settings: try PluginSettings(yaml: "per_side: 3")))
        XCTAssertEqual(near.connectionType, "structured.near")
    }

    func testUnknownSettingsKeyIsRejectedWithTheAllowedOnes() {
        XCTAssertThrowsError(try registry().makeOverlord(name: "structured.near", settings: try PluginSettings(yaml: "per_sides: 3"))) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("unknown key 'per_sides'"), text)
            XCTAssertTrue(text.contains("per_side"), text)
        }
    }

    func testOutOfRangeSettingsAreRejected() {
        let bad: [(String, String)] = [
            ("structured.near", "per_side: 0"), ("structured.near", "per_side: 9"), ("structured.near", "check_s: 0"),
            ("structured.far", "links_per_log2n: 0"), ("structured.far", "minimum: 5\nmaximum: 2"),
            ("structured.far", "parallel: 0"), ("leaf", "retry_s: 0"), ("leaf", "retry_s: 10\nmax_retry_s: 1"),
        ]
        for (name, yaml) in bad {
            XCTAssertThrowsError(try registry().makeOverlord(name: name, settings: try PluginSettings(yaml: yaml)), "\(name) \(yaml)") { error in
                XCTAssertTrue("\(error)".contains(name), "\(error)")
            }
        }
    }

    func testShortcutSettingsDecodeFromSnakeCaseKeys() throws {
        let yaml = "min_packets: 5\nidle_timeout_s: 30\nmax_shortcuts: 4\nretry_s: 2\nmax_retry_s: 20\nfallback_s: 1"
        let settings = try PluginSettings(yaml: yaml).decode(ShortcutOverlord.Settings.self, for: ShortcutOverlord.name)
        XCTAssertEqual(settings.minPackets, 5)
        XCTAssertEqual(settings.idleTimeoutSeconds, 30)
        XCTAssertEqual(settings.maxShortcuts, 4)
        XCTAssertEqual(settings.retrySeconds, 2)
        XCTAssertEqual(settings.maxRetrySeconds, 20)
        XCTAssertEqual(settings.fallbackSeconds, 1)
        let defaults = ShortcutOverlord.Settings()
        XCTAssertEqual([defaults.minPackets, defaults.maxShortcuts], [2, 32])
        XCTAssertEqual(defaults.idleTimeoutSeconds, 60)
        let shortcut = try registry().makeOverlord(name: "structured.shortcut", settings: .empty)
        XCTAssertEqual(shortcut.connectionType, "structured.shortcut")
    }

    /// Each bad shortcut setting is refused with an error that names the plugin and the key.
    func testBadShortcutSettingsNameTheKey() {
        let bad: [(String, String)] = [
            ("min_packets: 0", "min_packets"), ("idle_timeout_s: 0", "idle_timeout_s"), ("idle_timeout_s: -5", "idle_timeout_s"),
            ("max_shortcuts: -1", "max_shortcuts"), ("max_shortcuts: 5000", "max_shortcuts"), ("retry_s: 0", "retry_s"),
            ("retry_s: 10\nmax_retry_s: 5", "max_retry_s"), ("fallback_s: -1", "fallback_s"),
            ("min_packets: many", "min_packets"), ("idle_timeout: 60", "unknown key 'idle_timeout'"),
        ]
        for (yaml, key) in bad {
            XCTAssertThrowsError(try registry().makeOverlord(name: "structured.shortcut", settings: try PluginSettings(yaml: yaml)), yaml) { error in
                let text = "\(error)"
                XCTAssertTrue(text.contains("structured.shortcut") && text.contains(key), "\(yaml): \(text)")
            }
        }
    }

    func testWrongTypeNamesTheKey() {
        XCTAssertThrowsError(try registry().makeOverlord(name: "structured.far", settings: try PluginSettings(yaml: "maximum: lots"))) { error in
            XCTAssertTrue("\(error)".contains("maximum"), "\(error)")
        }
    }

    func testUnknownOverlordListsKnownOnes() {
        XCTAssertThrowsError(try registry().makeOverlord(name: "structured.farr", settings: .empty)) { error in
            XCTAssertEqual(error as? PluginError,
                           .unknownPlugin(kind: "overlord", name: "structured.farr", known: ["leaf", "structured.far", "structured.near", "structured.shortcut"]))
        }
    }

    func testFarLinkCountFollowsHalfLog2N() {
        let far = FarOverlord()
        XCTAssertEqual(far.targetCount(size: 3), 0)  // every node is a near neighbour
        XCTAssertEqual(far.targetCount(size: 1000), 5)
        XCTAssertEqual(far.targetCount(size: 10000), 7)
        XCTAssertEqual(far.targetCount(size: 1e9), 15)
    }

    /// With evenly spaced neighbours the size estimate is the real size.
    func testSizeEstimateFromNeighbourSpacing() throws {
        let n = 1024.0
        let local = Address(ringFraction: 0.25)
        var table = ConnectionTable(localAddress: local)
        let uri = try TransportURI("memory://1:1")
        for offset in [-2.0, -1.0, 1.0, 2.0] {
            let address = Address(ringFraction: 0.25 + offset / n)
            table.upsert(Connection(peer: NodeInfo(address: address, uris: [uri]), localTypes: ["structured.near"],
                                    remoteTypes: [], edgeID: EdgeID(1), transport: "memory", localURI: uri,
                                    remoteURI: uri, isInbound: false, createdAt: .zero))
        }
        let estimate = try XCTUnwrap(FarOverlord.estimateSize(table, perSide: 2))
        XCTAssertEqual(estimate, n, accuracy: 1)
    }
}
