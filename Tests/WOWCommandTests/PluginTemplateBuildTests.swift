import Foundation
import XCTest

@testable import WOWCommand

/// Both plugin templates, as `wow plugin new` writes them, build and pass their own tests (which run the
/// plugins in the simulator), so the templates never rot.
///
/// Runs under CI (`CI=true`) and when `WOW_TEMPLATE_BUILD=1`; skipped otherwise, because it builds two more
/// packages. To run it alone: `WOW_TEMPLATE_BUILD=1 swift test --filter PluginTemplateBuildTests`.
///
/// Cost: the packages are built in this repository's own scratch directory (`.build`), so the dependencies
/// and WOW's modules already built for this test run are reused and only the plugins' own targets compile.
/// `--ignore-lock` lets the nested builds share `.build` while the outer `swift test` holds its lock; they run
/// one after the other and only add the templates' products. Each package gets the outer build's
/// Package.resolved, so it resolves to exactly the dependency versions already checked out there.
final class PluginTemplateBuildTests: XCTestCase {
    private static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    func testTemplatesBuildAndPassTheirTests() throws {
        let environment = ProcessInfo.processInfo.environment
        guard environment["CI"] == "true" || environment["WOW_TEMPLATE_BUILD"] == "1" else {
            throw XCTSkip("builds and tests both plugin templates (minutes); runs under CI=true, or locally with "
                          + "WOW_TEMPLATE_BUILD=1 swift test --filter PluginTemplateBuildTests")
        }
        let scratch = Self.repository.appendingPathComponent(".build")
        let work = scratch.appendingPathComponent("plugin-templates")
        try? FileManager.default.removeItem(at: work)
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        let resolved = Self.repository.appendingPathComponent("Package.resolved")

        for kind in PluginScaffold.Kind.allCases {
            // The template's own names, so this builds exactly what PluginTemplates/ holds, with only the path
            // of the WOW dependency changed.
            let scaffold = try PluginScaffold(kind: kind, name: kind.placeholder)
            let package = work.appendingPathComponent(kind.rawValue)
            try scaffold.write(into: package.path, wowPath: Self.repository.path)
            if FileManager.default.fileExists(atPath: resolved.path) {
                try FileManager.default.copyItem(at: resolved, to: package.appendingPathComponent("Package.resolved"))
            }
            let started = Date()
            let result = try Self.swift(["test", "--package-path", package.path, "--scratch-path", scratch.path,
                                         "--ignore-lock"])
            let seconds = Date().timeIntervalSince(started)
            print("plugin template \(kind.rawValue): swift test took \(String(format: "%.1f", seconds)) s")
            XCTAssertEqual(result.status, 0, "the \(kind.rawValue) template failed to build or test:\n\(result.output.suffix(6000))")
            // Its tests ran (not merely built) and none failed.
            XCTAssertTrue(result.output.range(of: #"Executed [1-9][0-9]* tests?, with 0 failures"#, options: .regularExpression) != nil,
                          "the \(kind.rawValue) template's tests did not all run and pass:\n\(result.output.suffix(6000))")
        }
    }

    /// Runs `swift` with `arguments`, output captured.
    private static func swift(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["swift"] + arguments
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("wow-template-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: output.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: output) }
        let handle = try FileHandle(forWritingTo: output)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        process.waitUntilExit()
        try handle.close()
        return (process.terminationStatus, (try? String(contentsOf: output, encoding: .utf8)) ?? "")
    }
}
