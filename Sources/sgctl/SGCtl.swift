import ArgumentParser

@main
struct SGCtl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sgctl",
        abstract: "Operator tool for the stream-consumer worker pool.",
        subcommands: [ProduceCommand.self, VerifyCommand.self, ReplayCommand.self, InspectCommand.self, DLQCommand.self,
                      ChaosCommand.self, Bench.self, LockCommand.self]
    )
}

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmarks (release builds give meaningful numbers).",
        subcommands: [BenchClient.self, BenchLock.self, BenchWorker.self]
    )
}

/// Options every subcommand that talks to Redis shares.
struct RedisOptions: ParsableArguments {
    @Option(help: "Redis URL: redis://[user[:password]@]host[:port][/db] or unix:///path?db=N.")
    var redisURL = "redis://127.0.0.1:6379"
}

/// The key layout named by `--key-prefix` and `--partitions`, checked as the worker checks them.
func layoutKeys(prefix: String, partitions: Int) throws -> WorkerKeys {
    guard (1...WorkerConfiguration.maxPartitions).contains(partitions) else {
        throw ValidationError("--partitions must be in 1...\(WorkerConfiguration.maxPartitions), got \(partitions)")
    }
    return WorkerKeys(prefix: prefix, partitions: partitions)
}
