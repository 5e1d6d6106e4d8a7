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

/// Whether `a` and `b` hold the same bytes, compared with one `memcmp` rather than byte by byte in
/// instrumented code (which costs a coverage callback per byte: much of a harness's time on 64 KB packets).
func sameBytes(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    guard a.count == b.count else { return false }
    guard !a.isEmpty else { return true }
    return a.withUnsafeBytes { x in b.withUnsafeBytes { y in memcmp(x.baseAddress!, y.baseAddress!, a.count) == 0 } }
}
