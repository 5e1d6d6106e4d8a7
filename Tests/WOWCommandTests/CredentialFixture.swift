import Foundation
import XCTest

/// A temporary directory and the built `wow` executable, for tests that make credentials with the CLI as an
/// operator does. The directory is removed when the test ends, pass or fail.
struct CredentialFixture {
    let directory: String

    init(_ test: XCTestCase) throws {
        guard FileManager.default.isExecutableFile(atPath: WowExecutable.url.path) else {
            throw XCTSkip("the wow executable is not built at \(WowExecutable.url.path)")
        }
        let directory = NSTemporaryDirectory() + "wow-credentials-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        test.addTeardownBlock { try? FileManager.default.removeItem(atPath: directory) }
        self.directory = directory
    }

    func path(_ name: String) -> String { directory + "/" + name }

    /// Runs `wow` with `arguments`; its exit status and combined output.
    func wow(_ arguments: [String]) throws -> (status: Int32, output: String) {
        try WowExecutable.run(WowExecutable.url, arguments)
    }

    /// Runs `wow` and fails the test unless it exits 0; its output.
    @discardableResult
    func succeed(_ arguments: [String], file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let result = try wow(arguments)
        XCTAssertEqual(result.status, 0, "wow \(arguments.joined(separator: " ")): \(result.output)", file: file, line: line)
        return result.output
    }

    /// The permission bits of `name`.
    func mode(_ name: String) -> mode_t? {
        var info = stat()
        guard stat(path(name), &info) == 0 else { return nil }
        return info.st_mode & 0o777
    }

    func exists(_ name: String) -> Bool { FileManager.default.fileExists(atPath: path(name)) }

    func contents(_ name: String) -> String? {
        FileManager.default.contents(atPath: path(name)).map { String(decoding: $0, as: UTF8.self) }
    }

    /// The value after `label: ` on its line of `output`.
    static func value(_ label: String, in output: String) -> String? {
        for line in output.split(separator: "\n") where line.hasPrefix(label + ":") {
            return line.dropFirst(label.count + 1).trimmingCharacters(in: .whitespaces)
        }
        return nil
    }

    /// `wow ca init` into the fixture's directory.
    func makeAuthority(name: String = "lab") throws {
        try succeed(["ca", "init", "--name", name, "--dir", directory])
    }

    /// `wow cert issue` for the existing key of node `name` (a renewal with `--force`).
    @discardableResult
    func makeCertificate(_ name: String, extra: [String] = []) throws -> String {
        try succeed(["cert", "issue", "--ca-key", path("ca.key"), "--node-key", path("\(name).key"),
                     "--name", name, "--out", path("\(name).crt")] + extra)
    }

    /// `wow keygen` and `wow cert issue` for a node `name`: `<name>.key` and `<name>.crt`. Returns the output
    /// of `cert issue`.
    @discardableResult
    func makeMember(_ name: String, virtualIPs: [String] = [], extra: [String] = []) throws -> String {
        try succeed(["keygen", "--out", path("\(name).key")])
        return try succeed(["cert", "issue", "--ca-key", path("ca.key"), "--node-key", path("\(name).key"),
                            "--name", name, "--out", path("\(name).crt")]
                           + virtualIPs.flatMap { ["--vip", $0] } + extra)
    }
}
