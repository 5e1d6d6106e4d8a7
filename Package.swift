// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "WOW",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "WOWKit", targets: ["WOWKit"]),
        .library(name: "Transports", targets: ["Transports"]),
        .library(name: "Plugins", targets: ["Plugins"]),
        .library(name: "WOWSimulator", targets: ["WOWSimulator"]),
        .library(name: "WOWCommand", targets: ["WOWCommand"]),
        .executable(name: "wow", targets: ["wow"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.0"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.0"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
    ],
    targets: [
        .target(
            name: "WOWKit",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        .target(
            name: "Transports",
            dependencies: [
                "WOWKit",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(name: "Plugins", dependencies: ["WOWKit"]),
        // The deterministic runtime for the simulator, tests and plugin templates: nodes on virtual time
        // (`SimulatedNodeBuilder`), the ring oracle, `OverlaySimulation`. It needs the memory network
        // (Transports) and the default overlords (Plugins), which may not depend on each other.
        .target(
            name: "WOWSimulator",
            dependencies: [
                "WOWKit", "Transports", "Plugins",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "WOWCommand",
            dependencies: [
                "WOWKit", "Transports", "Plugins", "WOWSimulator",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(name: "wow", dependencies: ["WOWCommand"]),
        .testTarget(
            name: "WOWKitTests",
            dependencies: ["WOWKit", "Transports", "Plugins", "WOWSimulator",
                           .product(name: "Crypto", package: "swift-crypto")]
        ),
        .testTarget(
            name: "TransportsTests",
            dependencies: ["WOWKit", "Transports", .product(name: "NIOPosix", package: "swift-nio"),
                           .product(name: "NIOSSL", package: "swift-nio-ssl")]
        ),
        .testTarget(name: "PluginsTests", dependencies: ["WOWKit", "Transports", "Plugins", "WOWSimulator"]),
        .testTarget(name: "WOWCommandTests", dependencies: ["WOWCommand"]),
        .testTarget(
            name: "WOWSimulatorTests",
            dependencies: ["WOWSimulator", "WOWKit", "Transports", "Plugins", .product(name: "NIOCore", package: "swift-nio")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
