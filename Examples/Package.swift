// swift-tools-version: 6.2
// Examples of servers written with Socket2Async: a package of its own, so that nothing of it
// enters the library's dependency graph.
//
//   swift run -c release --package-path Examples mini-redis --port 6380
//   swift run -c release --package-path Examples kv-server --port 7070
//   swift test --package-path Examples
import PackageDescription

let package = Package(
    name: "Socket2Examples",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "mini-redis", targets: ["mini-redis"]),
        .executable(name: "kv-server", targets: ["kv-server"]),
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
        // A line-based key-value server (GET, SET, DEL, QUIT) and its client: the protocol, the
        // store shared by a reactor group, the per-connection handler and the signal handling.
        .target(
            name: "KVServer",
            dependencies: [
                .product(name: "Socket2", package: "Socket2"),
                .product(name: "Socket2Async", package: "Socket2"),
            ]
        ),
        .executableTarget(name: "kv-server", dependencies: ["KVServer"]),
        .testTarget(
            name: "KVServerTests",
            // kv-server: the SIGTERM test runs the executable as a child process.
            dependencies: [
                "KVServer", "kv-server",
                .product(name: "Socket2", package: "Socket2"),
                .product(name: "Socket2Async", package: "Socket2"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
