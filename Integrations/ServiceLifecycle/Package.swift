// swift-tools-version: 6.0
// Socket2 servers as swift-service-lifecycle services: a package of its own (depending on the
// root by path), so that users of Socket2 and Socket2Async never resolve service-lifecycle.
import PackageDescription

let package = Package(
    name: "Socket2ServiceLifecycle",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Socket2ServiceLifecycle", targets: ["Socket2ServiceLifecycle"]),
    ],
    dependencies: [
        .package(name: "Socket2", path: "../.."),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        .target(
            name: "Socket2ServiceLifecycle",
            dependencies: [
                .product(name: "Socket2", package: "Socket2"),
                .product(name: "Socket2Async", package: "Socket2"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .testTarget(
            name: "Socket2ServiceLifecycleTests",
            dependencies: [
                "Socket2ServiceLifecycle",
                .product(name: "Socket2", package: "Socket2"),
                .product(name: "Socket2Async", package: "Socket2"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
