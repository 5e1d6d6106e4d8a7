import ArgumentParser
import Foundation
import XCTest

#if canImport(FoundationXML)
import FoundationXML
#endif

@testable import WOWCommand

/// `wow sim --plot FILE.svg`: the join-time CDF and the hop histogram as SVG.
final class SimulationPlotTests: XCTestCase {
    /// The elements of an XML document, in order, with their attributes.
    private final class Elements: NSObject, XMLParserDelegate {
        var all: [(name: String, attributes: [String: String])] = []
        func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?, qualifiedName: String?,
                    attributes: [String: String] = [:]) {
            all.append((elementName, attributes))
        }
    }

    private func parse(_ url: URL) throws -> [(name: String, attributes: [String: String])] {
        let parser = try XCTUnwrap(XMLParser(contentsOf: url))
        let elements = Elements()
        parser.delegate = elements
        XCTAssertTrue(parser.parse(), "not well-formed XML: \(String(describing: parser.parserError))")
        return elements.all
    }

    private func temporaryDirectory() throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("wow-plot-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: directory) }
        return directory
    }

    func testSimPlotHoldsTheJoinTimeCDFAndOneBarPerHopCount() throws {
        let directory = try temporaryDirectory()
        let svg = directory.appendingPathComponent("sim.svg")
        let csv = directory.appendingPathComponent("joins.csv")
        let command = try XCTUnwrap(try WOWRootCommand.parseAsRoot(
            ["sim", "--nodes", "30", "--messages", "60", "--json", "--plot", svg.path, "--csv", csv.path]) as? SimCommand)
        try command.run()

        // The CSV has each node's times: the curves must have one point per node that got there.
        let rows = try String(contentsOf: csv, encoding: .utf8).split(separator: "\n").dropFirst().map { $0.split(separator: ",", omittingEmptySubsequences: false) }
        let routable = rows.filter { !$0[4].isEmpty }.count
        let far = rows.filter { !$0[5].isEmpty }.count
        XCTAssertEqual(routable, 30)

        let elements = try parse(svg)
        XCTAssertEqual(elements.first?.name, "svg")
        func points(_ id: String) throws -> [(Double, Double)] {
            let line = try XCTUnwrap(elements.first { $0.name == "polyline" && $0.attributes["id"] == id }, "no \(id)")
            return try XCTUnwrap(line.attributes["points"]).split(separator: " ").map { pair in
                let xy = pair.split(separator: ",").compactMap { Double($0) }
                return (xy[0], xy[1])
            }
        }
        let routablePoints = try points("cdf-routable")
        XCTAssertEqual(routablePoints.count, routable)
        XCTAssertEqual(try points("cdf-far").count, far)
        // A CDF rises (SVG y grows downwards) and moves right.
        XCTAssertEqual(routablePoints.map(\.1), routablePoints.map(\.1).sorted(by: >))
        XCTAssertEqual(routablePoints.map(\.0), routablePoints.map(\.0).sorted())

        // One bar per hop count of the messages, as many messages as were sent.
        let bars = elements.filter { $0.name == "rect" && $0.attributes["class"] == "bar" }
        let hopsShown = bars.compactMap { $0.attributes["id"].flatMap { Int($0.dropFirst("hops-".count)) } }
        XCTAssertFalse(bars.isEmpty)
        XCTAssertEqual(hopsShown.count, bars.count)
        XCTAssertEqual(Set(hopsShown).count, hopsShown.count)
        XCTAssertTrue(hopsShown.allSatisfy { $0 >= 1 })
        // Axes with labelled ticks on both charts.
        let texts = elements.filter { $0.name == "text" }.count
        XCTAssertGreaterThan(texts, 15)
        XCTAssertEqual(elements.filter { $0.name == "g" }.map { $0.attributes["id"] ?? "" }, ["join-times", "hop-histogram"])
    }

    func testHistogramBarsMatchTheCounts() throws {
        let plot = SimulationPlot(routable: [0.2, 0.4, 0.3], far: [1, 2], hops: [1: 4, 2: 10, 4: 1], title: "t <&>")
        let directory = try temporaryDirectory()
        let file = directory.appendingPathComponent("p.svg")
        try plot.write(to: file.path)
        let elements = try parse(file)
        let bars = elements.filter { $0.attributes["class"] == "bar" }
        XCTAssertEqual(bars.compactMap { $0.attributes["id"] }, ["hops-1", "hops-2", "hops-4"])
        let heights = bars.compactMap { $0.attributes["height"].flatMap(Double.init) }
        XCTAssertEqual(heights[1] / heights[0], 2.5, accuracy: 0.01)
        XCTAssertEqual(heights[1] / heights[2], 10, accuracy: 0.1)
    }

    func testTicksAreRoundNumbersCoveringTheRange() {
        XCTAssertEqual(SimulationPlot.linearTicks(0, 9), [0, 2, 4, 6, 8, 10])
        let log = SimulationPlot.logTicks(0.23, 12.1)
        XCTAssertEqual(log.min, 0.2, accuracy: 1e-9)
        XCTAssertEqual(log.max, 20, accuracy: 1e-9)
        XCTAssertEqual(log.ticks.count, 7)
    }

    func testABadPlotPathIsRefusedBeforeTheRun() {
        let cases: [(String, String)] = [
            ("/nonexistent-dir-wow/sim.svg", "directory /nonexistent-dir-wow does not exist"),
            ("/tmp", "is a directory"),
            ("", "empty path"),
        ]
        for (path, expected) in cases {
            var message: String?
            do {
                _ = try WOWRootCommand.parseAsRoot(["sim", "--plot", path])
            } catch {
                message = WOWRootCommand.message(for: error)
            }
            XCTAssertTrue(message?.contains(expected) == true, "\(path): \(message ?? "accepted")")
        }
    }
}
