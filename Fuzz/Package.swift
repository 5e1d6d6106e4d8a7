// swift-tools-version:5.4
//
// libFuzzer harnesses for WOW's parsers (docs/testing.md, "Fuzzing"): one executable, `wow-fuzz`, whose
// target is chosen by `WOW_FUZZ_TARGET`. Build and run it with `Scripts/fuzz.sh`, which passes
// `-sanitize=fuzzer,address` to every Swift module; this package is apart from the main one so that its
// `swift build` and `swift test` never build or instrument it.
//
// Tools version 5.4 on purpose: from 5.5 on, SwiftPM compiles an executable's entry point as `<module>_main`
// and links with `--defsym main=<module>_main`, which no libFuzzer harness defines (libFuzzer brings its own
// `main`, linked whole-archive, so defining the renamed symbol gives two). 5.4 links the executable as it is.
import PackageDescription

let package = Package(
    name: "WOWFuzz",
    platforms: [.macOS("14.0")],
    products: [
        .executable(name: "wow-fuzz", targets: ["WOWFuzz"]),
    ],
    dependencies: [
        .package(name: "WOW", path: ".."),
        .package(name: "swift-nio", url: "https://github.com/apple/swift-nio.git", from: "2.101.0"),
    ],
    targets: [
        .executableTarget(
            name: "WOWFuzz",
            dependencies: [
                .product(name: "WOWKit", package: "WOW"),
                .product(name: "Transports", package: "WOW"),
                .product(name: "Plugins", package: "WOW"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        ),
    ]
)
