// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "stargazer-worker",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "RedisClient", targets: ["RedisClient"]),
        .library(name: "DistributedLocking", targets: ["DistributedLocking"]),
        .library(name: "StreamWorker", targets: ["StreamWorker"]),
        .library(name: "Chaos", targets: ["Chaos"]),
        .executable(name: "stream-consumer", targets: ["stream-consumer"]),
        .executable(name: "sgctl", targets: ["sgctl"]),
        // Both commands in one binary, chosen by the name it is called by: the container image ships
        // this with two links, so the code they share is in the image once.
        .executable(name: "stargazer", targets: ["stargazer"]),
    ],
    // Exact versions: the releases CI tested. Package.resolved stays out of git (the local mirror's
    // commit ids exist only on these machines), so the pins are what make another build resolve the same.
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", exact: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", exact: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", exact: "2.13.0"),
        .package(url: "https://github.com/jpsim/Yams", exact: "6.2.2"),
        .package(url: "https://github.com/apple/swift-collections", exact: "1.6.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", exact: "0.2.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", exact: "2.28.1"),
        .package(url: "https://github.com/swift-server/async-http-client", exact: "1.37.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", exact: "2.4.1"),
        .package(url: "https://github.com/apple/swift-crypto", exact: "4.5.2"),
        .package(url: "https://github.com/apple/swift-distributed-tracing", exact: "1.7.3"),
        // OTLP over HTTP only: the gRPC exporter would add grpc-swift to every build.
        .package(url: "https://github.com/swift-otel/swift-otel", exact: "1.6.0", traits: ["OTLPHTTP"]),
    ],
    targets: [
        .systemLibrary(
            name: "CHiredis",
            pkgConfig: "hiredis",
            providers: [.apt(["libhiredis-dev"])]
        ),
        // glibc's malloc.h, for the worker's arena limit.
        .systemLibrary(name: "CMalloc"),
        .systemLibrary(
            name: "COpenSSL",
            pkgConfig: "openssl",
            providers: [.apt(["libssl-dev"])]
        ),
        .target(
            name: "RedisClient",
            dependencies: [
                "CHiredis",
                .product(name: "DequeModule", package: "swift-collections"),
                "COpenSSL",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "DistributedLocking",
            dependencies: [
                "RedisClient",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ]
        ),
        // The worker's configuration (flags, SG_* variables, YAML) and its key layout: shared by the
        // worker, sgctl and the tools, and kept apart so StreamWorker/ shows the worker itself.
        .target(
            name: "WorkerSettings",
            dependencies: [
                "RedisClient",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        .target(
            name: "StreamWorker",
            dependencies: [
                "RedisClient",
                "DistributedLocking",
                "WorkerSettings",
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ]
        ),
        .target(
            name: "JSONLogging",
            dependencies: [.product(name: "Logging", package: "swift-log")]
        ),
        .target(
            name: "OperatorHTTP",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(name: "Chaos"),
        // The version and git commit that `--version` prints; the plugin generates the commit.
        .target(name: "BuildInfo", plugins: ["BuildInfoPlugin"]),
        .plugin(name: "BuildInfoPlugin", capability: .buildTool()),
        // The commands live in libraries, so that each has a binary of its own and `stargazer` has both.
        .target(
            name: "StreamConsumerCLI",
            dependencies: [
                "BuildInfo",
                "CMalloc",
                "StreamWorker",
                "RedisClient",
                "JSONLogging",
                "OperatorHTTP",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "OTel", package: "swift-otel"),
            ]
        ),
        .target(
            name: "StreamTools",
            dependencies: ["RedisClient", "DistributedLocking", "StreamWorker"]
        ),
        .target(
            name: "SGCtlCLI",
            dependencies: [
                "BuildInfo",
                // `sgctl health` reads a worker's command line as the worker does.
                "StreamConsumerCLI",
                "StreamTools",
                "RedisClient",
                "DistributedLocking",
                "StreamWorker",
                "Chaos",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(name: "stream-consumer", dependencies: ["StreamConsumerCLI"]),
        .executableTarget(name: "sgctl", dependencies: ["SGCtlCLI"]),
        .executableTarget(name: "stargazer", dependencies: ["StreamConsumerCLI", "SGCtlCLI"]),
        .target(
            name: "TestSupport",
            dependencies: ["RedisClient", "Chaos", .product(name: "Logging", package: "swift-log")],
            path: "Tests/TestSupport"
        ),
        .testTarget(
            name: "RedisClientTests",
            dependencies: ["RedisClient", "TestSupport"]
        ),
        .testTarget(
            name: "DistributedLockingTests",
            dependencies: ["DistributedLocking", "RedisClient", "TestSupport"]
        ),
        .testTarget(
            name: "StreamWorkerTests",
            dependencies: [
                "StreamWorker", "DistributedLocking", "RedisClient", "Chaos", "TestSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
            ]
        ),
        .testTarget(
            name: "OperatorTests",
            dependencies: [
                "OperatorHTTP", "JSONLogging", "StreamWorker", "RedisClient", "TestSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        .testTarget(
            name: "ChaosTests",
            dependencies: ["Chaos", "TestSupport"]
        ),
        .testTarget(
            name: "StreamToolsTests",
            dependencies: ["StreamTools", "StreamWorker", "DistributedLocking", "RedisClient", "TestSupport", "BuildInfo", "SGCtlCLI"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
