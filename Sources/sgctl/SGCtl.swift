import ArgumentParser
import BuildInfo

@main
struct SGCtl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sgctl",
        abstract: "Operator tool for the stream-consumer worker pool.",
        version: BuildInfo.versionLine,
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
