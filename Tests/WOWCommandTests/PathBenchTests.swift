import ArgumentParser
import Foundation
import XCTest

@testable import WOWCommand

/// `wow bench path`: its options, and that a short run drives every case through both nodes and reports it
/// (the benchmark itself checks that every packet and byte reached B's device; no timing thresholds).
final class PathBenchTests: XCTestCase {
    func testBadOptionsGetSpecificErrors() {
        for (arguments, expected) in [(["--seconds", "0"], "--seconds"), (["--size", "20"], "--size"),
                                      (["--only", "3"], "--only: no case '3'")] {
            do {
                _ = try WOWRootCommand.parseAsRoot(["bench", "path"] + arguments)
                XCTFail("\(arguments) was accepted")
            } catch {
                let message = WOWRootCommand.message(for: error)
                XCTAssertTrue(message.contains(expected), "\(arguments): \(message)")
            }
        }
    }

    func testAShortRunReportsEveryCase() throws {
        let report = try PathBenchmark(seconds: 0.05, size: 1_000).run()
        XCTAssertGreaterThan(report.seal_open_ns_per_kb, 0)
        XCTAssertEqual(report.cases.map(\.name), ["1000-byte packets", "tcp, whole super-segment",
                                                  "tcp, 8 segments/packet", "tcp, 1 segment/packet"])
        for c in report.cases {
            XCTAssertGreaterThan(c.segments, 0, c.name)
            XCTAssertGreaterThan(c.send_ns_per_segment, 0, c.name)
            XCTAssertGreaterThan(c.receive_ns_per_segment, 0, c.name)
            XCTAssertEqual(c.vs_seal_open, c.ns_per_kb / report.seal_open_ns_per_kb, accuracy: 1e-9, c.name)
        }
        // Overlay packets per segment: one per packet, 50 segments in 1, 7 (8 each) and 50 packets.
        let packets = Dictionary(uniqueKeysWithValues: report.cases.map { ($0.name, Double($0.overlay_packets) / Double($0.segments)) })
        XCTAssertEqual(packets["1000-byte packets"], 1)
        XCTAssertEqual(packets["tcp, whole super-segment"] ?? 0, 1.0 / 50, accuracy: 1e-9)
        XCTAssertEqual(packets["tcp, 8 segments/packet"] ?? 0, 7.0 / 50, accuracy: 1e-9)
        XCTAssertEqual(packets["tcp, 1 segment/packet"], 1)
    }

    func testOnlyRunsTheCasesNamed() throws {
        let command = try XCTUnwrap(try WOWRootCommand.parseAsRoot(["bench", "path", "--seconds", "0.02", "--only", "1",
                                                                    "--json"]) as? PathBenchCommand)
        let text = try command.output()
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], text)
        let cases = try XCTUnwrap(object["cases"] as? [[String: Any]], text)
        XCTAssertEqual(cases.compactMap { $0["name"] as? String }, ["tcp, 1 segment/packet"])
    }
}
