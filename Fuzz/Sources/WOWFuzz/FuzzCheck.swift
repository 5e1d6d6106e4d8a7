#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Stops the process with `message` when `condition` is false: libFuzzer reports it as a crash and writes the
/// input that caused it. Harnesses check their invariants with it.
func require(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String,
             file: StaticString = #file, line: UInt = #line) {
    guard !condition() else { return }
    fputs("wow-fuzz: invariant broken at \(file):\(line): \(message())\n", stderr)
    abort()
}
