import ArgumentParser
import Foundation
import XCTest

@testable import WOWCommand

/// `wow bench crypto`: its options, and that a short run reports every measurement with positive numbers
/// (no timing thresholds: the machine decides the numbers).
final class BenchCommandTests: XCTestCase {
    private func crypto(_ arguments: [String]) throws -> CryptoBenchCommand {
        try XCTUnwrap(try WOWRootCommand.parseAsRoot(["bench", "crypto"] + arguments) as? CryptoBenchCommand)
    }

    private func assertPositive(_ object: [String: Any], _ keys: [String], _ context: String,
                                file: StaticString = #filePath, line: UInt = #line) {
        for key in keys {
            guard let value = object[key] as? Double else {
                return XCTFail("\(context): no number '\(key)' in \(object)", file: file, line: line)
            }
            XCTAssertGreaterThan(value, 0, "\(context).\(key)", file: file, line: line)
        }
    }

    func testDefaults() throws {
        let command = try crypto([])
        XCTAssertEqual(command.seconds, 1)
        XCTAssertEqual(try command.parsedSizes(), [64, 512, 1400, 8192])
        XCTAssertFalse(command.json)
    }

    func testBadOptionsGetSpecificErrors() {
        for (arguments, expected) in [(["--seconds", "0"], "--seconds"), (["--seconds", "61"], "--seconds"),
                                      (["--sizes", "64,big"], "--sizes"), (["--sizes", "70000"], "--sizes")] {
            do {
                _ = try WOWRootCommand.parseAsRoot(["bench", "crypto"] + arguments)
                XCTFail("\(arguments) was accepted")
            } catch {
                let message = WOWRootCommand.message(for: error)
                XCTAssertTrue(message.contains(expected), "\(arguments): \(message)")
            }
        }
    }

    func testAShortRunReportsEveryMeasurementAsJSON() throws {
        let command = try crypto(["--seconds", "0.05", "--json"])
        let text = try command.output()
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], text)

        XCTAssertEqual(object["seconds_per_measurement"] as? Double, 0.05)
        XCTAssertTrue(["debug", "release"].contains(object["build"] as? String ?? ""))
        XCTAssertTrue(["AES.GCM", "ChaChaPoly"].contains(object["faster_aead"] as? String ?? ""))
        assertPositive(object, ["aesgcm_speedup_over_chachapoly_geomean"], "report")

        let handshake = try XCTUnwrap(object["handshake"] as? [String: Any])
        XCTAssertGreaterThanOrEqual(handshake["count"] as? Int ?? 0, 10)
        assertPositive(handshake, ["mean_us", "p50_us", "p99_us", "handshakes_per_s"], "handshake")
        XCTAssertLessThanOrEqual(handshake["p50_us"] as? Double ?? 0, handshake["p99_us"] as? Double ?? 0)

        let sizes = try XCTUnwrap(object["sizes"] as? [[String: Any]])
        XCTAssertEqual(sizes.compactMap { $0["bytes"] as? Int }, [64, 512, 1400, 8192])
        let expectedNames = ["memcpy"] + ["channel", "chachapoly", "aesgcm"].flatMap {
            ["\($0) seal", "\($0) open", "\($0) seal+open"]
        }
        for size in sizes {
            let bytes = size["bytes"] as? Int ?? -1
            assertPositive(size, ["channel_vs_raw_aead", "aesgcm_speedup_over_chachapoly"], "\(bytes) B")
            let rows = try XCTUnwrap(size["measurements"] as? [[String: Any]])
            XCTAssertEqual(rows.compactMap { $0["name"] as? String }, expectedNames)
            for row in rows {
                let context = "\(bytes) B \(row["name"] as? String ?? "?")"
                XCTAssertGreaterThan(row["packets"] as? Int ?? 0, 0, context)
                assertPositive(row, ["packets_per_s", "gbit_per_s", "ns_per_packet", "time_vs_memcpy"], context)
            }
        }
    }

    func testTheTableNamesEveryRow() throws {
        let text = try crypto(["--seconds", "0.01", "--sizes", "64"]).output()
        for expected in ["Handshake", "p50", "p99", "handshakes/s", "64 B", "memcpy", "channel seal+open",
                         "chachapoly open", "aesgcm seal", "Faster AEAD here"] {
            XCTAssertTrue(text.contains(expected), "missing '\(expected)' in:\n\(text)")
        }
    }

    func testTheExecutablePrintsJSON() throws {
        let wow = WowExecutable.url
        guard FileManager.default.isExecutableFile(atPath: wow.path) else {
            throw XCTSkip("the wow executable is not built at \(wow.path)")
        }
        let result = try WowExecutable.run(wow, ["bench", "crypto", "--seconds", "0.01", "--sizes", "64", "--json"])
        XCTAssertEqual(result.status, 0, result.output)
        let object = try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any]
        XCTAssertNotNil(object?["handshake"], result.output)
        XCTAssertEqual((object?["sizes"] as? [[String: Any]])?.count, 1, result.output)
    }
}
