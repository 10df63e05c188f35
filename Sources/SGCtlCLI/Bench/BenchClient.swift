import ArgumentParser
import Foundation
import Logging
import RedisClient

struct BenchClient: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "client",
        abstract: "Round-trip latency and throughput of the Redis client (1 caller, and many callers pipelined on one connection).",
        discussion: """
            Each figure is measured twice: with callers on Swift's global pool, and with callers on the \
            connection's own I/O thread (withTaskExecutorPreference(client.executor)), which saves a thread hop per reply.
            """
    )

    @OptionGroup var redis: RedisOptions

    @Option(help: "Sequential operations per measurement (the pipelined run does 4x as many).")
    var operations = 50_000

    @Option(help: "Concurrent callers sharing one connection in the pipelining measurement.")
    var callers = 64

    @Flag(help: ArgumentHelp(jsonHelp))
    var json = false

    struct Figures {
        var p50: Double
        var p99: Double
        var sequentialOpsPerSecond: Double
        var pipelinedOpsPerSecond: Double
    }

    func run() async throws {
        var configuration = try await redis.configuration()
        configuration.poolSize = 1
        configuration.clientName = "sgctl-bench"
        let client = RedisClient(configuration: configuration, logger: Logger(label: "bench"))
        defer { client.close() }
        let key = "sg:bench:client:\(UUID().uuidString)"
        let value = [UInt8](repeating: UInt8(ascii: "x"), count: 3)

        let pool = try await measure(client, key: key, value: value)
        let onExecutor = try await withTaskExecutorPreference(client.executor) {
            try await measure(client, key: key, value: value)
        }
        try await client.send("DEL", key)

        if json {
            printJSONLine([
                "bench": "client", "operations": operations, "callers": callers,
                "sequential_p50_us": pool.p50, "sequential_p99_us": pool.p99,
                "ops_per_sec_1_caller": pool.sequentialOpsPerSecond,
                "ops_per_sec_pipelined": pool.pipelinedOpsPerSecond,
                "executor_sequential_p50_us": onExecutor.p50, "executor_sequential_p99_us": onExecutor.p99,
                "executor_ops_per_sec_1_caller": onExecutor.sequentialOpsPerSecond,
                "executor_ops_per_sec_pipelined": onExecutor.pipelinedOpsPerSecond,
            ])
        } else {
            for (name, f) in [("global pool", pool), ("connection executor", onExecutor)] {
                print("\(name): SET 1 caller p50 \(fmt(f.p50)) µs, p99 \(fmt(f.p99)) µs, \(fmt(f.sequentialOpsPerSecond)) ops/s; \(callers) callers on 1 connection \(fmt(f.pipelinedOpsPerSecond)) ops/s")
            }
        }
    }

    private func measure(_ client: RedisClient, key: String, value: [UInt8]) async throws -> Figures {
        for _ in 0..<1000 { try await client.send("SET", key, value) }
        var samples = LatencySamples()
        let clock = ContinuousClock()
        let sequentialStart = clock.now
        for _ in 0..<operations {
            let t0 = clock.now
            try await client.send("SET", key, value)
            samples.add(t0.duration(to: clock.now))
        }
        let sequentialElapsed = seconds(sequentialStart.duration(to: clock.now))

        let perCaller = max(1, operations * 4 / callers)
        let pipelinedStart = clock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<callers {
                group.addTask {
                    for _ in 0..<perCaller { try await client.send("SET", key, value) }
                }
            }
            try await group.waitForAll()
        }
        let pipelinedElapsed = seconds(pipelinedStart.duration(to: clock.now))
        return Figures(
            p50: samples.percentileMicros(50), p99: samples.percentileMicros(99),
            sequentialOpsPerSecond: Double(operations) / sequentialElapsed,
            pipelinedOpsPerSecond: Double(perCaller * callers) / pipelinedElapsed)
    }
}

func fmt(_ x: Double) -> String { String(format: x >= 100 ? "%.0f" : "%.1f", x) }
