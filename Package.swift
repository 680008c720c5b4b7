// swift-tools-version: 6.2
import PackageDescription

let package = Package(
    name: "Socket2",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Socket2", targets: ["Socket2"]),
        .library(name: "Socket2Async", targets: ["Socket2Async"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
    ],
    targets: [
        .target(name: "CSocket2"),
        .target(
            name: "Socket2",
            dependencies: ["CSocket2", .product(name: "SystemPackage", package: "swift-system")]
        ),
        .systemLibrary(
            name: "CURing",
            pkgConfig: "liburing",
            providers: [.apt(["liburing-dev"])]
        ),
        .target(
            name: "Socket2Async",
            dependencies: ["Socket2", "CURing", .product(name: "SystemPackage", package: "swift-system")]
        ),
        .testTarget(
            name: "Socket2Tests",
            dependencies: ["Socket2", .product(name: "SystemPackage", package: "swift-system")]
        ),
        .testTarget(
            name: "CURingTests",
            dependencies: ["CURing"]
        ),
        .testTarget(
            name: "Socket2AsyncTests",
            dependencies: ["Socket2Async", "Socket2", .product(name: "SystemPackage", package: "swift-system")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
