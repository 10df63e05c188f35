import ArgumentParser
import Foundation
import Logging
import RedisClient

struct BenchClient: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "client",
        abstract: "Round-trip latency and throughput of the Redis client (1 caller, and 64 callers pipelined on one connection)."
    )

    @OptionGroup var redis: RedisOptions

    @Option(help: "Operations per measurement.")
    var operations = 50_000

    @Option(help: "Concurrent callers sharing one connection in the pipelining measurement.")
    var callers = 64

    @Flag(help: "Print one JSON object line.")
    var json = false

    func run() async throws {
        var configuration = try RedisConfiguration(url: redis.redisURL)
        configuration.poolSize = 1
        configuration.clientName = "sgctl-bench"
        let client = RedisClient(configuration: configuration, logger: Logger(label: "bench"))
        defer { client.close() }
        let key = "sg:bench:client:\(UUID().uuidString)"
        let value = [UInt8](repeating: UInt8(ascii: "x"), count: 3)
        try await client.send("SET", key, value)

        // Warm up the connection and the code paths.
        for _ in 0..<1000 { try await client.send("SET", key, value) }

        var samples = LatencySamples(capacity: operations)
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
        try await client.send("DEL", key)

        let result: [String: Any] = [
            "bench": "client",
            "operations": operations,
            "sequential_p50_us": samples.percentileMicros(50),
            "sequential_p99_us": samples.percentileMicros(99),
            "ops_per_sec_1_caller": Double(operations) / sequentialElapsed,
            "callers": callers,
            "ops_per_sec_pipelined": Double(perCaller * callers) / pipelinedElapsed,
        ]
        if json {
            printJSONLine(result)
        } else {
            print("sequential SET, 1 caller:  p50 \(fmt(samples.percentileMicros(50))) µs, p99 \(fmt(samples.percentileMicros(99))) µs, \(fmt(Double(operations) / sequentialElapsed)) ops/s")
            print("\(callers) callers, 1 connection: \(fmt(Double(perCaller * callers) / pipelinedElapsed)) ops/s")
        }
    }
}

func fmt(_ x: Double) -> String { String(format: x >= 100 ? "%.0f" : "%.1f", x) }
