import Foundation
import XCTest

/// `wow bench alloc` run as a process with `Scripts/allocation-counter.c` preloaded (built here with the
/// toolchain's clang): the data path allocates nothing per packet beyond the buffer a packet is sealed in.
///
/// One buffer is two allocations (NIO's storage object and its bytes). The release build (what ships, and
/// what BENCHMARKS.md reports) allocates that buffer when sending and nothing when receiving. A debug build
/// (what `swift test` builds) adds allocations of generic standard-library code it does not specialize:
/// coroutine frames of the dictionary lookups with a default (`edgeChannels[id, default:]`, the traffic ledger),
/// and closure contexts of `contains(where:)` / `first(where:)` over the connection table; they are bounded
/// here and vanish in release (`swift build -c release`, then `wow bench alloc`).
final class AllocationBenchTests: XCTestCase {
    #if os(Linux)
    private static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    /// Runs `executable`, found on PATH, as `WowExecutable.run` does.
    private func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws
        -> (status: Int32, output: String) {
        try WowExecutable.run(URL(fileURLWithPath: "/usr/bin/env"), [executable] + arguments, environment: environment)
    }

    /// The counter, compiled into a temporary directory (removed by the caller).
    private func buildCounter(in directory: URL) throws -> URL {
        let library = directory.appendingPathComponent("allocation-counter.so")
        let source = Self.repository.appendingPathComponent("Scripts/allocation-counter.c").path
        let clang: (status: Int32, output: String)
        do {
            clang = try run("clang", ["-shared", "-fPIC", "-O2", "-o", library.path, source])
        } catch {
            throw XCTSkip("no clang to build the allocation counter: \(error)")
        }
        if clang.status == 127 {
            // The Swift toolchain brings clang; a CI machine without it is broken, a developer's may just lack it on PATH.
            if ProcessInfo.processInfo.environment["CI"] == "true" { XCTFail("clang is not on PATH: \(clang.output)") }
            throw XCTSkip("clang is not on PATH")
        }
        XCTAssertEqual(clang.status, 0, clang.output)
        return library
    }

    func testTheDataPathAllocatesOnlyTheBufferAPacketIsSealedIn() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("wow-alloc-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let counter = try buildCounter(in: directory)

        let (status, output) = try run(WowExecutable.url.path, ["bench", "alloc", "--packets", "2000", "--json"],
                                       environment: ["LD_PRELOAD": counter.path])
        XCTAssertEqual(status, 0, output)
        let json = try XCTUnwrap(output.split(separator: "\n").last(where: { $0.hasPrefix("{") }), output)
        let report = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any], output)
        let stages = try XCTUnwrap(report["stages"] as? [[String: Any]], output)
        var perPacket: [String: Double] = [:]
        for stage in stages {
            guard let name = stage["name"] as? String, let value = stage["allocations_per_packet"] as? Double else { continue }
            perPacket[name] = value
        }
        let isRelease = report["build"] as? String == "release"
        // Counted over 2,000 packets: a per-packet allocation shows as a whole number; a handful of one-off
        // ones (a dictionary or array growing once) stay under 0.01.
        func assertPerPacket(_ stage: String, _ expected: Double, _ why: String, line: UInt = #line) {
            guard let value = perPacket[stage] else { return XCTFail("no stage '\(stage)' in \(output)", line: line) }
            XCTAssertEqual(value, expected, accuracy: 0.01, "\(stage): \(why)\n\(output)", line: line)
        }
        func assertAtMost(_ stage: String, _ bound: Double, _ why: String, line: UInt = #line) {
            guard let value = perPacket[stage] else { return XCTFail("no stage '\(stage)' in \(output)", line: line) }
            XCTAssertLessThanOrEqual(value, bound + 0.01, "\(stage): \(why)\n\(output)", line: line)
        }
        assertPerPacket("encode", 2, "one buffer: NIO's storage object and its bytes")
        assertPerPacket("encode+seal", 2, "sealed in place in the buffer it was encoded into")
        assertPerPacket("open", 0, "opened into the reused buffer")
        if isRelease {
            assertPerPacket("node send", 2, "device to edge: only the frame's buffer")
            assertPerPacket("node receive", 0, "edge to device: nothing")
            // Per segment of a super-segment: the frame's buffer; per super-segment (50 segments), the
            // benchmark's own copy of it going in and the flush being scheduled coming out (2 each).
            assertAtMost("tcp segments send", 2.04, "a super-segment cut into segments: only each frame's buffer")
            assertAtMost("tcp segments receive", 0.04, "segments put back together: nothing per segment")
        } else {
            assertAtMost("tcp segments send", 10.04, "the frame's buffer, plus debug-only generic code")
            assertAtMost("tcp segments receive", 12, "nothing per segment, plus debug-only generic code")
            // The release figures plus the debug-only generic code named above (8 sending, 9 receiving today;
            // 23 and 22 before the data path was made allocation-free, counted the same way).
            assertAtMost("node send", 10, "device to edge: the frame's buffer, plus debug-only generic code")
            assertAtMost("node receive", 9, "edge to device: nothing, plus debug-only generic code")
        }
        XCTAssertNotNil(perPacket["udp send+receive"], "the socket stage is reported (NIO's costs: not asserted)")
    }
    #endif
}
