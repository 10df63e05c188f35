import ArgumentParser
import Foundation
import RedisClient
import StreamTools
import StreamWorker

/// Compares, per channel, what producers stamped with what the state recorded and what was
/// dead-lettered (``Verifier``, ``ChannelAudit``).
struct VerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check every channel: each produced seq applied exactly once and in order, or dead-lettered.",
        discussion: """
            Produced seqs come from the producer's counters (<prefix>:seq:channel:<id>), or from the stream's \
            own entries for channels without one. Reports lost, not yet applied, duplicated, out-of-order and \
            dead-lettered messages separately. A history trimmed at --history-max is checked through the state's \
            count. Exits 1 on any loss, duplicate or out-of-order entry, and when nothing was found to verify.
            """
    )

    @OptionGroup var redis: RedisOptions
    @OptionGroup var namespace: NamespaceOptions
    @Option(help: "Input stream, for channels without a seq counter and for dead letters (default: the namespace's sg…:stream:inbound).")
    var stream: String?
    @Option(help: "Field holding the channel id.") var channelField = "channel_id"
    @Option(help: "The worker's history-max: a history this long is taken as trimmed, not as lost entries.")
    var historyMax = 100
    @Flag(help: ArgumentHelp(jsonHelp)) var json = false

    func run() async throws {
        guard historyMax > 0 else { throw ValidationError("--history-max must be positive") }
        let environment = try namespace.resolved()
        let stream = self.stream ?? environment.defaultStream
        let client = try await redis.client()
        defer { client.close() }
        let report = try await Verifier(client: client, keys: try namespace.keys(), stream: stream,
                                        channelField: channelField, historyMax: historyMax).run()
        if json { printJSON(report.json) } else { print(report.text(keyPrefix: environment.keyPrefix, stream: stream)) }
        if !report.ok { throw ExitCode(1) }
    }
}
