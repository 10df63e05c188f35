import ArgumentParser

@main
struct StreamConsumerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stream-consumer",
        abstract: "Per-channel serialized Redis Streams worker (the worker loop arrives with the worker module)."
    )

    @Option(help: "Redis URL, e.g. redis://127.0.0.1:6379 or unix:///run/redis.sock?db=0.")
    var redisURL = "redis://127.0.0.1:6379"

    func run() throws {
        throw ValidationError("the worker is not built yet; see `stream-consumer --help`")
    }
}
