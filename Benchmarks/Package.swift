// swift-tools-version: 6.2
// The benchmarks of Socket2: a separate package, so that SwiftNIO and package-benchmark never
// enter the library's dependency graph.
//
//   swift run -c release --package-path Benchmarks socket2-bench           # the comparison
//   swift build -c release --package-path Benchmarks --product socket2-server
//   swift package --package-path Benchmarks benchmark                      # allocation suites
import PackageDescription

let package = Package(
    name: "Socket2Benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "Socket2", path: ".."),
        .package(url: "https://github.com/apple/swift-nio", .upToNextMinor(from: "2.101.2")),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
    ],
    targets: [
        .target(name: "CBenchSupport"),
        // Server logic for every backend, shared by socket2-server and socket2-bench.
        .target(
            name: "BenchServers",
            dependencies: [
                "CBenchSupport",
                .product(name: "Socket2", package: "Socket2"),
                .product(name: "Socket2Async", package: "Socket2"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "socket2-server",
            dependencies: ["BenchServers"]
        ),
        // Accept throughput of ReactorGroup.serve: one shared listening socket against SO_REUSEPORT.
        .executableTarget(
            name: "serve-accept",
            dependencies: [
                .product(name: "Socket2", package: "Socket2"),
                .product(name: "Socket2Async", package: "Socket2"),
            ]
        ),
        // package-benchmark suites (the plugin finds them in Benchmarks/<Name>/).
        .executableTarget(
            name: "SocketBenchmarks",
            dependencies: [
                "CBenchSupport",
                .product(name: "Socket2", package: "Socket2"),
                .product(name: "Socket2Async", package: "Socket2"),
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/SocketBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "socket2-bench",
            dependencies: [
                "BenchServers",
                "CBenchSupport",
                .product(name: "Socket2", package: "Socket2"),
                .product(name: "Socket2Async", package: "Socket2"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]
        ),
        // Sockets handed between Socket2 and SwiftNIO, both ways (and the DocC article's snippets).
        .testTarget(
            name: "NIOHandOffTests",
            dependencies: [
                .product(name: "Socket2", package: "Socket2"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
