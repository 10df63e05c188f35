import ArgumentParser
import Foundation
import RedisClient
import StreamTools

struct ReplayCopy: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "copy",
        abstract: "Copy a range of entries from one stream to another, on the same or another Redis.",
        discussion: """
            For example from production into staging on another server: \
            SG_FROM_REDIS_URL=redis://replica:6379 SG_TO_REDIS_URL=redis://staging:6379 \
            sgctl replay copy --from-stream sg:stream:inbound --namespace staging --seq restamp. \
            Ids are kept by default, so a repeated copy adds nothing twice. With --seq keep the copy is \
            refused, before anything is written, when a channel would not continue where the target's \
            state is. Exits 1 when any entry was out of order or rejected.
            """
    )

    @OptionGroup var redis: RedisOptions
    @Option(help: "Redis to read from (default: $SG_FROM_REDIS_URL, else the --redis-url connection).") var fromURL: String?
    @Option(help: "Stream to read (with partitions, its partition streams one after another).") var fromStream: String
    @Option(help: "Partition streams the source is split into (default: --partitions). With another count than the target's, use --ids new: kept ids would arrive out of order.")
    var fromPartitions: Int?
    @Option(help: "Redis to write to (default: $SG_TO_REDIS_URL, else the --redis-url connection).") var toURL: String?
    @Option(help: "Stream to write (default: the same name, renamed into --namespace if given).") var toStream: String?
    @OptionGroup var range: RangeOptions
    @OptionGroup var channels: ChannelOptions
    @OptionGroup var write: WriteOptions
    @OptionGroup var report: ReportOptions

    func run() async throws {
        let range = try range.range()
        let pacer = try write.pacer()
        let (environment, targetStream) = try write.target(stream: toStream ?? fromStream)
        let sourceConfiguration = try await endpoint(fromURL, option: "--from-url", variable: "SG_FROM_REDIS_URL")
        let targetConfiguration = try await endpoint(toURL, option: "--to-url", variable: "SG_TO_REDIS_URL")
        if sourceConfiguration.endpoint == targetConfiguration.endpoint && sourceConfiguration.database == targetConfiguration.database
            && targetStream == fromStream {
            throw ValidationError("source and target are the same stream on the same Redis; give --to-stream, --namespace or --to-url")
        }
        let source = RedisClient(configuration: redis.applyingTLS(to: sourceConfiguration))
        defer { source.close() }
        let target = RedisClient(configuration: redis.applyingTLS(to: targetConfiguration))
        defer { target.close() }
        let targetKeys = try write.namespace.keys()
        let sourceKeys = try layoutKeys(prefix: environment.base, partitions: fromPartitions ?? targetKeys.partitions)
        let reader = StreamRangeReader(client: source, streams: sourceKeys.streams(fromStream), pageSize: max(write.batch, 100))
        guard try await !reader.existing().isEmpty else {
            throw CommandFailure(ReplayExport.missing(fromStream, reader) + " on the source Redis")
        }
        let importer = write.importer(client: target, stream: targetStream, keys: targetKeys, channelField: channels.channelField)
        var plan: SeqPlan?
        if write.seq == .keep {
            plan = try await checkKeptSeqs(importer, keyPrefix: environment.keyPrefix) { feed in
                try await reader.forEachPage(range) { try await feed(channels.filter($0)) }
            }
        }
        let length = try await reader.length()
        let total = range.start == "-" && range.end == "+" && channels.channel == nil ? min(length, range.limit ?? Int.max) : range.limit
        var progress = ProgressDisplay(label: "copy", total: total, enabled: !report.quiet)
        var run = ReplayRun(importer: importer, pacer: pacer, batchSize: write.batch)
        try await reader.forEachPage(range) { page in
            progress.update(try await run.feed(channels.filter(page)) { progress.update($0) })
        }
        let summary = try await run.finish()
        progress.finish(summary.read)
        if let plan { try await importer.raiseCounters(plan.channels.mapValues(\.last)) }
        if report.json { printJSON(summary.json(dryRun: write.dryRun)) } else { print(summary.text(dryRun: write.dryRun)) }
        if !summary.complete { throw ExitCode(1) }
    }

    /// One side of the copy: its own URL (flag or variable), with any credentials inside it, or else
    /// the shared connection options.
    private func endpoint(_ url: String?, option: String, variable: String) async throws -> RedisConfiguration {
        let fromEnvironment = ProcessInfo.processInfo.environment[variable].flatMap { $0.isEmpty ? nil : $0 }
        guard url != nil || fromEnvironment != nil else { return try await redis.configuration() }
        return try await RedisOptions.resolve(url: url, passwordFile: nil, user: nil, urlOption: option, urlVariable: variable,
                                         sharedCredentials: false)
    }
}
