// swift-tools-version:6.0
import PackageDescription

// A WOW transport plugin, made from WOW's PluginTemplates/LoopbackTransport (docs/writing-a-transport.md).
let package = Package(
    name: "LoopbackTransport",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "LoopbackTransport", targets: ["LoopbackTransport"]),
        .executable(name: "loopback-wow", targets: ["loopback-wow"]),
    ],
    dependencies: [
        // The WOW repository. `wow plugin new` writes the path of the WOW checkout here.
        .package(name: "WOW", path: "../.."),
        // For ByteBuffer, the packet type of every edge (the same version range as WOW's).
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.0"),
        // For the test's loggers.
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.0"),
    ],
    targets: [
        // The plugin itself: depends on WOWKit only, like every transport.
        .target(name: "LoopbackTransport", dependencies: [
            .product(name: "WOWKit", package: "WOW"), .product(name: "NIOCore", package: "swift-nio"),
        ]),
        // `wow` with this transport registered: `swift run loopback-wow run --config node.yml`.
        .executableTarget(name: "loopback-wow", dependencies: [
            "LoopbackTransport", .product(name: "WOWCommand", package: "WOW"),
        ]),
        .testTarget(name: "LoopbackTransportTests", dependencies: [
            "LoopbackTransport",
            .product(name: "WOWKit", package: "WOW"),
            .product(name: "Plugins", package: "WOW"),
            // SimulatedNodeBuilder: nodes on virtual time, secured with deterministic keys.
            .product(name: "WOWSimulator", package: "WOW"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
    ],
    swiftLanguageModes: [.v6]
)
