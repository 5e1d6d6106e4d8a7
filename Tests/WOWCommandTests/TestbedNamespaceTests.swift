import Foundation
import XCTest

/// The testbed (`Scripts/testbed.py`, docs/testbed.md) in its short form: 18 public routers and 12
/// workstations in the six firewalled domains, every one a `wow run` process. Asserts outcomes, not timings:
/// the ring converges, every fresh workstation becomes routable and reaches the fixed peer (directly where a
/// punch can join them: its LAN, the other cone NAT, the nested NATs), its pings are answered, a workstation that moves to another domain keeps its TCP transfer and SSH
/// session with nothing lost, unmodified applications (GNU parallel over ssh, openmpi's mpirun) get every
/// result right over the virtual network and over the underlay, and `down` removes everything. Namespaces
/// `wowtc-*` (not the big testbed's).
final class TestbedNamespaceTests: XCTestCase {
    private static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Scripts/testbed.py").path

    private var directory = ""
    /// This test's failures, said again as its last lines: CI shows only the end of a long test's output.
    private var failures: [String] = []

    override func recordFailure(withDescription description: String, inFile filePath: String, atLine lineNumber: Int,
                                expected: Bool) {
        let oneLine = description.split(separator: "\n").joined(separator: " | ")
        failures.append("line \(lineNumber): " + (oneLine.count > 4000 ? oneLine.prefix(4000) + "..." : oneLine))
        super.recordFailure(withDescription: description, inFile: filePath, atLine: lineNumber, expected: expected)
    }

    override func tearDown() {
        if !failures.isEmpty {
            print("TestbedNamespaceTests: \(failures.count) failure(s):\n" + failures.joined(separator: "\n"))
        }
        super.tearDown()
    }

    /// Runs `testbed.py ARGUMENTS` to completion with the test's prefix and directory.
    @discardableResult
    private func testbed(_ arguments: [String]) throws -> (status: Int32, output: String) {
        try WowExecutable.run(URL(fileURLWithPath: NamespaceLab.tool("python3") ?? "/usr/bin/python3"),
                              [Self.script, "--dir", directory] + arguments, environment: ["WOW_TESTBED_PREFIX": "wowtc-"])
    }

    private func results(_ experiment: String) throws -> [[String: Any]] {
        let text = try String(contentsOfFile: directory + "/results/\(experiment).jsonl", encoding: .utf8)
        return try text.split(separator: "\n").map {
            try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
    }

    /// A trial that a punch could join but that ends relayed records both ends' view (`diagnosis`): their NATs,
    /// URIs, observed mappings, drops and connection to each other; a fixed peer that did not answer is null.
    /// No namespaces: the script's function, fed two statuses as `join` reads them from the control sockets.
    func testAJoinTrialLeftRelayedRecordsBothEndsView() throws {
        let program = """
            import json, sys
            sys.path.insert(0, sys.argv[1])
            import testbed
            joiner = {"address": "aa", "nat": "behind a NAT", "uris": ["udp://198.18.2.2:4100"], "observed_uris": [],
                      "drops": {"route_absentDestination_ctm": 1},
                      "connections": [{"peer": "ff", "path": "relayed via r3", "remote_uri": "relay://x/ff",
                                       "peer_uris": ["udp://198.18.2.1:4101"], "age_s": 28.0, "path_switches": 0,
                                       "alternatives": [], "rtt_ms": 1.0}]}
            fixed = {"address": "ff", "nat": "behind a NAT", "uris": ["udp://198.18.2.1:4101"],
                     "observed_uris": ["udp://198.18.2.1:4101"], "drops": {}, "connections": []}
            print(json.dumps([testbed.diagnosis(joiner, fixed, "ff"), testbed.diagnosis(joiner, None, "ff")]))
            """
        let scripts = URL(fileURLWithPath: Self.script).deletingLastPathComponent().path
        let run = try WowExecutable.run(URL(fileURLWithPath: NamespaceLab.tool("python3") ?? "/usr/bin/python3"),
                                        ["-c", program, scripts])
        XCTAssertEqual(run.status, 0, run.output)
        let both = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(run.output.utf8)) as? [[String: Any]], run.output)
        let joiner = try XCTUnwrap(both.first?["joiner"] as? [String: Any])
        XCTAssertEqual(joiner["drops"] as? [String: Int], ["route_absentDestination_ctm": 1])
        let toFixed = try XCTUnwrap(joiner["to_other"] as? [String: Any])
        XCTAssertEqual(toFixed["path"] as? String, "relayed via r3")
        XCTAssertNil(toFixed["rtt_ms"], "only the fields that say why")
        let fixed = try XCTUnwrap(both.first?["fixed"] as? [String: Any])
        XCTAssertEqual(fixed["observed"] as? [String], ["udp://198.18.2.1:4101"])
        XCTAssertTrue(fixed["to_other"] is NSNull, "the fixed peer holds no connection to the joiner")
        XCTAssertTrue(both.last?["fixed"] is NSNull, "a fixed peer that did not answer")
    }

    func testTheShortTestbedJoinsMigratesAndCleansUp() throws {
        let lab = NamespaceLab(self)
        try lab.requireEnvironment(tools: ["ping", "python3", "ssh", "ssh-keygen", "parallel", "mpirun", "mpicc"])
        guard NamespaceLab.tool("sshd") != nil || FileManager.default.isExecutableFile(atPath: "/usr/sbin/sshd") else {
            if ProcessInfo.processInfo.environment["CI"] == "true" { return XCTFail("the testbed test needs sshd (openssh-server)") }
            throw XCTSkip("the testbed test needs sshd (openssh-server)")
        }
        directory = NSTemporaryDirectory() + "wowtc-\(UUID().uuidString)"
        try testbed(["down"])
        addTeardownBlock { [self] in
            _ = try? testbed(["down"])
            try? FileManager.default.removeItem(atPath: directory)
        }
        let up = try testbed(["up", "--routers", "18", "--workstations", "12", "--wow", lab.wowBinary.path, "--settle", "90"])
        XCTAssertEqual(up.status, 0, "up failed: \(up.output)")
        guard up.status == 0 else { return }

        // Bad input gets a clear error and starts nothing.
        let badDomain = try testbed(["run", "join", "--trials", "1", "--domains", "9"])
        XCTAssertEqual(badDomain.status, 1, badDomain.output)
        XCTAssertTrue(badDomain.output.contains("--domains: the domains are 1-6"), badDomain.output)
        let badHead = try testbed(["run", "apps", "--head", "nobody"])
        XCTAssertEqual(badHead.status, 1, badHead.output)
        XCTAssertTrue(badHead.output.contains("no node named nobody"), badHead.output)

        let join = try testbed(["run", "join", "--trials", "6", "--deadline", "30"])
        XCTAssertEqual(join.status, 0, join.output)
        print(join.output)
        let trials = try results("join")
        XCTAssertEqual(trials.count, 6, join.output)
        for trial in trials {
            let label = "trial \(trial["trial"] ?? "?") in d\(trial["domain"] ?? "?"): \(trial)"
            XCTAssertNotNil(trial["routable_s"] as? Double, "never routable: " + label)
            XCTAssertNotNil(trial["connected_s"] as? Double, "never connected to the fixed peer: " + label)
            XCTAssertGreaterThan(trial["replies"] as? Int ?? 0, 0, "no ping answered: " + label)
            // Where a punch can join the two (its LAN, the other cone NAT, the nested NATs), the path is direct.
            if trial["direct_possible"] as? Bool == true {
                XCTAssertNotNil(trial["direct_s"] as? Double, "not direct where a punch can join them: " + label)
            }
        }

        let migrate = try testbed(["run", "migrate", "--seconds", "12", "--rate", "500000"])
        XCTAssertEqual(migrate.status, 0, migrate.output)
        print(migrate.output)
        let moved = try XCTUnwrap(try results("migrate").first)
        XCTAssertEqual(moved["stream_intact"] as? Bool, true, "\(moved)")
        XCTAssertEqual(moved["ssh_intact"] as? Bool, true, "\(moved)")
        // The sends that failed while its interface was gone are no reason to give up UDP segmentation offload.
        let moverLog = try String(contentsOfFile: directory + "/logs/\(moved["mover"] as? String ?? "d2-w1").log", encoding: .utf8)
        XCTAssertFalse(moverLog.contains("sending fragments without GSO"), "the move turned GSO off")

        // A small job farm and MPI job: every job's output and every MPI check right, over both networks.
        let apps = try testbed(["run", "apps", "--jobs", "22", "--job-mb", "4", "--rounds", "1", "--mpi-ranks", "3",
                                "--mpi-tasks", "40", "--mpi-iterations", "200000", "--mpi-rounds", "50",
                                "--mpi-bytes", "200000", "--mpi-timeout", "120"])
        XCTAssertEqual(apps.status, 0, apps.output)
        print(apps.output)
        let ran = try XCTUnwrap(try results("apps").first)
        let farms = try XCTUnwrap(ran["farm"] as? [[String: Any]])
        XCTAssertEqual(Set(farms.compactMap { $0["network"] as? String }), ["wow", "underlay"], "\(ran)")
        for farm in farms { XCTAssertEqual(farm["ok"] as? Int, 22, "a job was lost or wrong: \(farm)") }
        let mpiRuns = try XCTUnwrap(ran["mpi"] as? [[String: Any]])
        XCTAssertEqual(mpiRuns.count, 3, "\(ran)")  // the LAN set over both networks, the domains over WOW
        for mpi in mpiRuns { XCTAssertEqual(mpi["ok"] as? Bool, true, "an MPI run failed: \(mpi)") }

        let measure = try testbed(["measure", "--seconds", "3"])
        XCTAssertEqual(measure.status, 0, measure.output)
        let sample = try XCTUnwrap(try results("measure").first)
        XCTAssertEqual(sample["nodes"] as? Int, 30, "a node died: \(measure.output)")

        let report = try testbed(["report", "--out", directory + "/report"])
        XCTAssertEqual(report.status, 0, report.output)
        XCTAssertTrue(FileManager.default.fileExists(atPath: directory + "/report/testbed-join.svg"))

        let down = try testbed(["down"])
        XCTAssertEqual(down.status, 0, down.output)
        let left = try lab.run(lab.ipPath, ["netns", "list"]).output
        XCTAssertFalse(left.contains("wowtc-"), "namespaces left behind: \(left)")
    }
}
