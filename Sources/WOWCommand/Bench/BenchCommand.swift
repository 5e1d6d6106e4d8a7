import ArgumentParser

/// `wow bench`: micro-benchmarks of WOW's hot paths on this machine, each reported against a baseline
/// measured in the same run (STYLE.md: benchmarks report ratios). One subcommand per subject.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure WOW's hot paths on this machine (run a release build: swift run -c release wow bench ...).",
        subcommands: [CryptoBenchCommand.self, UDPBenchCommand.self, AllocationBenchCommand.self, PathBenchCommand.self]
    )
}

/// The build a benchmark ran in, for its report ("debug" figures are not the product's).
enum BenchBuild {
    static var name: String {
        #if DEBUG
        return "debug"
        #else
        return "release"
        #endif
    }
}
