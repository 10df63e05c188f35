import ArgumentParser
import DistributedLocking
import Foundation
import Logging
import RedisClient

struct BenchLock: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lock",
        abstract: "Uncontended acquire+release cycles/s, and hand-off latency between two contenders on separate connections."
    )

    @OptionGroup var redis: RedisOptions

    @Option(help: "Uncontended acquire+release cycles.")
    var cycles = 20_000

    @Option(help: "Hand-offs between the two contenders.")
    var handoffs = 2_000

    @Flag(help: ArgumentHelp(jsonHelp))
    var json = false

    func run() async throws {
        var configuration = try await redis.configuration()
        configuration.clientName = "sgctl-bench-lock"
        let a = RedisClient(configuration: configuration)
        let b = RedisClient(configuration: configuration)
        defer { a.close(); b.close() }
        let key = "sg:bench:lock:\(UUID().uuidString)"
        let clock = ContinuousClock()
        var logger = Logger(label: "sg.lock")
        logger.logLevel = .warning

        let solo = DistributedLock(client: a, key: key, ttl: .seconds(10), logger: logger)
        let cycles = self.cycles
        let measureCycles: @Sendable () async throws -> Double = {
            for _ in 0..<500 {
                _ = await solo.acquire()
                await solo.release()
            }
            let start = clock.now
            for _ in 0..<cycles {
                guard await solo.acquire() else { throw ValidationError("uncontended acquire failed") }
                await solo.release()
            }
            return Double(cycles) / seconds(start.duration(to: clock.now))
        }
        let cyclesPerSecond = try await measureCycles()
        let cyclesPerSecondOnExecutor = try await withTaskExecutorPreference(a.executor) { try await measureCycles() }

        let clients = [a, b]
        let locks = [
            DistributedLock(client: a, key: key, ttl: .seconds(10), logger: logger),
            DistributedLock(client: b, key: key, ttl: .seconds(10), logger: logger),
        ]
        guard await locks[0].acquire() else { throw ValidationError("first holder could not acquire") }
        var samples = LatencySamples()
        for round in 0..<handoffs {
            let holder = locks[round % 2]
            let waiter = locks[(round + 1) % 2]
            // Each contender runs on its own client's I/O thread, as a worker would.
            let handedOver = Task(executorPreference: clients[(round + 1) % 2].executor) { () -> ContinuousClock.Instant? in
                await waiter.acquireBlocking(pollInterval: .seconds(5), timeout: .seconds(10)) ? clock.now : nil
            }
            // Let the waiter fail its first attempt and subscribe, so we measure a real wake-up.
            try await Task.sleep(for: .milliseconds(2))
            let released = clock.now
            await withTaskExecutorPreference(clients[round % 2].executor) { await holder.release() }
            guard let acquired = await handedOver.value else { throw ValidationError("hand-off \(round) timed out") }
            samples.add(released.duration(to: acquired))
        }
        await locks[handoffs % 2].release()
        try await a.send("DEL", key, LockKeys.fenceKey(forLock: key))

        let p50 = samples.percentileMicros(50) / 1000
        let p99 = samples.percentileMicros(99) / 1000
        if json {
            printJSONLine([
                "bench": "lock", "cycles": cycles, "cycles_per_sec": cyclesPerSecond,
                "executor_cycles_per_sec": cyclesPerSecondOnExecutor,
                "handoffs": handoffs, "handoff_p50_ms": p50, "handoff_p99_ms": p99,
            ])
        } else {
            print("uncontended acquire+release: \(fmt(cyclesPerSecond)) cycles/s (global pool), \(fmt(cyclesPerSecondOnExecutor)) cycles/s (connection executor)")
            print("hand-off between two contenders: p50 \(String(format: "%.3f", p50)) ms, p99 \(String(format: "%.3f", p99)) ms")
        }
    }
}
