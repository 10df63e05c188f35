import ArgumentParser
import RedisClient
import StreamTools
import StreamWorker

struct InspectCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show a group (pending, lag, consumers, held locks, dead letters) or one channel.",
        subcommands: [InspectGroup.self, InspectChannel.self],
        defaultSubcommand: InspectGroup.self
    )
}

struct InspectGroup: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "group",
        abstract: "Pending count and lag, each consumer's pending count and idle time, held channel locks with TTL and fence, dead letters by reason."
    )

    @OptionGroup var redis: RedisOptions
    @Option(help: "Stream.") var stream = "sg:stream:inbound"
    @Option(help: "Consumer group.") var group = "workers"
    @Option(help: "Key prefix.") var keyPrefix = "sg"
    @OptionGroup var layout: PartitionOptions
    @Option(help: "Count reasons over at most this many of the newest dead letters.") var reasonSample = 10_000
    @Flag(help: ArgumentHelp(jsonHelp)) var json = false

    func run() async throws {
        guard reasonSample > 0 else { throw ValidationError("--reason-sample must be positive") }
        let client = try await redis.client()
        defer { client.close() }
        let report: GroupReport
        do {
            report = try await Inspector(client: client, keys: try layout.keys(prefix: keyPrefix))
                .group(stream: stream, group: group, reasonSample: reasonSample)
        } catch let error as InspectError {
            throw CommandFailure(error.description)
        }
        if json { printJSON(report.json) } else { print(report.text) }
    }
}

struct InspectChannel: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "channel",
        abstract: "A channel's state, fence, last seq, lock and the tail of its history."
    )

    @OptionGroup var redis: RedisOptions
    @Argument(help: "Channel id.") var id: String
    @Option(help: "Key prefix.") var keyPrefix = "sg"
    @OptionGroup var layout: PartitionOptions
    @Option(help: "History entries to show (newest).") var tail = 10
    @Flag(help: ArgumentHelp(jsonHelp)) var json = false

    func run() async throws {
        guard tail >= 0 else { throw ValidationError("--tail must not be negative") }
        let client = try await redis.client()
        defer { client.close() }
        let report = try await Inspector(client: client, keys: try layout.keys(prefix: keyPrefix)).channel(id, historyTail: tail)
        if json { printJSON(report.json) } else { print(report.text) }
    }
}
