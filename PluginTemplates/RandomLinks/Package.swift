// swift-tools-version:6.0
import PackageDescription

// A WOW link strategy plugin, made from WOW's PluginTemplates/RandomLinks (docs/writing-a-link-strategy.md).
let package = Package(
    name: "RandomLinks",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "RandomLinks", targets: ["RandomLinks"]),
        .executable(name: "randomlinks-wow", targets: ["randomlinks-wow"]),
    ],
    dependencies: [
        // The WOW repository. `wow plugin new` writes the path of the WOW checkout here.
        .package(name: "WOW", path: "../.."),
    ],
    targets: [
        // The plugin itself: depends on WOWKit only, like every link strategy.
        .target(name: "RandomLinks", dependencies: [.product(name: "WOWKit", package: "WOW")]),
        // `wow` with this strategy registered: `swift run randomlinks-wow run --config node.yml`.
        .executableTarget(name: "randomlinks-wow", dependencies: [
            "RandomLinks", .product(name: "WOWCommand", package: "WOW"),
        ]),
        .testTarget(name: "RandomLinksTests", dependencies: [
            "RandomLinks",
            .product(name: "WOWKit", package: "WOW"),
            .product(name: "Plugins", package: "WOW"),
            // OverlaySimulation: a whole overlay on the simulated WAN, on virtual time.
            .product(name: "WOWSimulator", package: "WOW"),
        ]),
    ],
    swiftLanguageModes: [.v6]
)
