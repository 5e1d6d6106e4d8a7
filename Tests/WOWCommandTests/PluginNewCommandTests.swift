import Foundation
import XCTest

@testable import WOWCommand

/// `wow plugin new`: names checked, templates filled in, nothing overwritten, clear errors.
final class PluginNewCommandTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("wow-plugin-new-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    /// The repository these tests were built from.
    private static var repository: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    }

    func testNamesMustBeALetterThenLettersAndDigits() {
        for bad in ["", "9lives", "my-transport", "my_transport", "héllo", "a b", String(repeating: "a", count: 41)] {
            XCTAssertThrowsError(try PluginScaffold(kind: .transport, name: bad), "'\(bad)' was accepted")
        }
        XCTAssertThrowsError(try PluginScaffold(kind: .transport, name: "UDP")) {
            XCTAssertTrue("\($0)".contains("built-in transport"), "\($0)")
        }
        XCTAssertThrowsError(try PluginScaffold(kind: .overlord, name: "Leaf"))
        XCTAssertThrowsError(try PluginScaffold(kind: .overlord, name: "Plugins")) {
            XCTAssertTrue("\($0)".contains("a module WOW or Swift already has"), "\($0)")
        }
        XCTAssertNoThrow(try PluginScaffold(kind: .transport, name: "quic2"))
        XCTAssertNoThrow(try PluginScaffold(kind: .overlord, name: "Kleinberg"))
    }

    func testTheTransportTemplateGetsTheNameEverywhereAndTheWOWPath() throws {
        let scaffold = try PluginScaffold(kind: .transport, name: "quic")
        let files = scaffold.files(wowPath: "/opt/wow")
        let paths = files.map(\.path)
        XCTAssertTrue(paths.contains("Sources/QuicTransport/QuicEdgeListener.swift"), "\(paths)")
        XCTAssertTrue(paths.contains("Sources/quic-wow/main.swift"), "\(paths)")
        for file in files {
            XCTAssertFalse(file.contents.contains("Loopback") || file.contents.lowercased().contains("loopback"),
                           "\(file.path) still names the template")
        }
        let manifest = try XCTUnwrap(files.first { $0.path == "Package.swift" }?.contents)
        XCTAssertTrue(manifest.contains(#".package(name: "WOW", path: "/opt/wow")"#), manifest)
        XCTAssertTrue(manifest.contains(#"name: "QuicTransport""#), manifest)
        let plugin = try XCTUnwrap(files.first { $0.path == "Sources/QuicTransport/QuicTransport.swift" }?.contents)
        XCTAssertTrue(plugin.contains(#"public static let scheme = "quic""#), plugin)
    }

    func testTheOverlordTemplateGetsTheName() throws {
        let files = try PluginScaffold(kind: .overlord, name: "Kleinberg").files(wowPath: "../wow")
        XCTAssertTrue(files.map(\.path).contains("Sources/Kleinberg/KleinbergOverlord.swift"), "\(files.map(\.path))")
        let overlord = try XCTUnwrap(files.first { $0.path == "Sources/Kleinberg/KleinbergOverlord.swift" }?.contents)
        XCTAssertTrue(overlord.contains(#"public static let name = "kleinberg""#), overlord)
        XCTAssertTrue(overlord.contains("final class KleinbergOverlord"), overlord)
        for file in files { XCTAssertFalse(file.contents.lowercased().contains("randomlinks"), file.path) }
    }

    func testTheCommandWritesThePackageAndRefusesToOverwrite() throws {
        let into = directory.appendingPathComponent("Quic").path
        let made = try WowExecutable.run(WowExecutable.url, ["plugin", "new", "transport", "Quic", "--into", into,
                                                             "--wow-path", Self.repository])
        XCTAssertEqual(made.status, 0, made.output)
        XCTAssertTrue(made.output.contains("swift test"), made.output)
        let manifest = try String(contentsOfFile: into + "/Package.swift", encoding: .utf8)
        XCTAssertTrue(manifest.contains("path: \"\(Self.repository)\""), manifest)
        XCTAssertTrue(FileManager.default.fileExists(atPath: into + "/Tests/QuicTransportTests/QuicTransportTests.swift"))

        let again = try WowExecutable.run(WowExecutable.url, ["plugin", "new", "transport", "Quic", "--into", into,
                                                              "--wow-path", Self.repository])
        XCTAssertNotEqual(again.status, 0)
        XCTAssertTrue(again.output.contains("already exists"), again.output)
    }

    func testBadInputExitsNonZeroWithTheReason() throws {
        let cases: [([String], String)] = [
            (["plugin", "new", "widget", "Foo"], "unknown plugin kind 'widget'"),
            (["plugin", "new", "overlord", "my-links"], "use only ASCII letters and digits"),
            (["plugin", "new", "overlord", "Foo", "--into", directory.appendingPathComponent("x").path,
              "--wow-path", directory.path], "is not a WOW repository"),
        ]
        for (arguments, expected) in cases {
            let result = try WowExecutable.run(WowExecutable.url, arguments)
            XCTAssertNotEqual(result.status, 0, "\(arguments)")
            XCTAssertTrue(result.output.contains(expected), "\(arguments): \(result.output)")
        }
    }

    func testTheRepositoryIsFoundAboveADirectoryInsideIt() throws {
        let inside = Self.repository + "/Sources/WOWKit/Addressing"
        XCTAssertEqual(try PluginScaffold.findWOWRepository(from: [inside]), Self.repository)
        XCTAssertThrowsError(try PluginScaffold.findWOWRepository(from: [directory.path])) {
            XCTAssertTrue("\($0)".contains("--wow-path"), "\($0)")
        }
    }
}
