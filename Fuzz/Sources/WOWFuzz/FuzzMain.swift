#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

// libFuzzer's entry points. The binary has libFuzzer's `main`; these are the two functions it calls.
//
// Environment:
// - `WOW_FUZZ_TARGET=<name>`: the target to run (`list` prints the names and exits).
// - `WOW_FUZZ_WRITE_SEEDS=<directory>`: writes every target's seeds to `<directory>/<name>/` and exits.

/// The target chosen at initialization.
private var selectedTarget: FuzzTarget.Type?

@_cdecl("LLVMFuzzerInitialize")
public func fuzzInitialize(_ argc: UnsafeMutablePointer<CInt>,
                           _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    let environment = ProcessInfo.processInfo.environment
    if let directory = environment["WOW_FUZZ_WRITE_SEEDS"] {
        writeSeeds(to: directory)
        exit(0)
    }
    let name = environment["WOW_FUZZ_TARGET"] ?? ""
    if name == "list" {
        for target in fuzzTargets { print("\(target.name)\t\(target.summary)") }
        exit(0)
    }
    guard let target = fuzzTargets.first(where: { $0.name == name }) else {
        let names = fuzzTargets.map { $0.name }.joined(separator: ", ")
        fputs("wow-fuzz: set WOW_FUZZ_TARGET to one of: \(names) (or run Scripts/fuzz.sh TARGET SECONDS)\n", stderr)
        exit(2)
    }
    selectedTarget = target
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    selectedTarget?.run(bytes)
    return 0
}

private func writeSeeds(to directory: String) {
    let manager = FileManager.default
    for target in fuzzTargets {
        let folder = URL(fileURLWithPath: directory).appendingPathComponent(target.name)
        do {
            try manager.createDirectory(at: folder, withIntermediateDirectories: true)
            for seed in target.seeds() {
                let file = folder.appendingPathComponent("seed-\(seed.key)")
                try Data(seed.bytes).write(to: file)
                // A seed must pass its own target: a seed that fails is a broken harness or a finding.
                target.run(seed.bytes)
            }
        } catch {
            fputs("wow-fuzz: cannot write the seeds of \(target.name) to \(folder.path): \(error)\n", stderr)
            exit(1)
        }
        print("\(target.name): \(target.seeds().count) seeds")
    }
}
