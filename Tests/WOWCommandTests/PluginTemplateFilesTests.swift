import Foundation
import XCTest

@testable import WOWCommand

/// The templates compiled into `wow` are exactly the files in PluginTemplates/.
final class PluginTemplateFilesTests: XCTestCase {
    func testEmbeddedTemplatesMatchPluginTemplates() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("PluginTemplates")
        let templates: [(folder: String, files: [(path: String, contents: String)])] = [
            ("LoopbackTransport", PluginTemplateFiles.transport), ("RandomLinks", PluginTemplateFiles.overlord),
        ]
        let fix = "run `python3 Scripts/embed-plugin-templates.py` after editing PluginTemplates/"
        for (folder, embedded) in templates {
            let base = root.appendingPathComponent(folder)
            let onDisk = try Self.files(under: base)
            XCTAssertEqual(embedded.map(\.path), onDisk, "\(folder): the embedded files differ from the folder's; \(fix)")
            for file in embedded {
                let text = try String(contentsOf: base.appendingPathComponent(file.path), encoding: .utf8)
                XCTAssertEqual(file.contents, text, "\(folder)/\(file.path) differs from its embedded copy; \(fix)")
            }
        }
    }

    /// Files of a template, as the script picks them: no hidden files or build folders, no Package.resolved.
    private static func files(under base: URL) throws -> [String] {
        let enumerator = try XCTUnwrap(FileManager.default.enumerator(atPath: base.path))
        var found: [String] = []
        while let path = enumerator.nextObject() as? String {
            let parts = path.split(separator: "/")
            if parts.contains(where: { $0.hasPrefix(".") }) || parts.last == "Package.resolved" { continue }
            var isDirectory: ObjCBool = false
            _ = FileManager.default.fileExists(atPath: base.appendingPathComponent(path).path, isDirectory: &isDirectory)
            if !isDirectory.boolValue { found.append(path) }
        }
        return found.sorted()
    }
}
