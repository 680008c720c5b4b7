// swift-tools-version: 6.0
// Examples of servers written with Socket2Async: a package of its own, so that nothing of it
// enters the library's dependency graph.
//
//   swift run -c release --package-path Examples mini-redis --port 6380
//   swift test --package-path Examples
import PackageDescription

let package = Package(
    name: "Socket2Examples",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "mini-redis", targets: ["mini-redis"]),
    ],
    dependencies: [
        .package(name: "Socket2", path: ".."),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
    ],
    targets: [
        // The RESP2 parser, the command engine, the store and the server: a library so that the
        // tests reach them.
        .target(
            name: "MiniRedis",
            dependencies: [
                .product(name: "Socket2", package: "Socket2"),
                .product(name: "Socket2Async", package: "Socket2"),
            ]
        ),
        .executableTarget(name: "mini-redis", dependencies: ["MiniRedis"]),
        .testTarget(
            name: "MiniRedisTests",
            dependencies: [
                "MiniRedis",
                .product(name: "Socket2", package: "Socket2"),
                .product(name: "Socket2Async", package: "Socket2"),
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
