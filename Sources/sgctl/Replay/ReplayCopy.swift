import ArgumentParser
import RedisClient
import StreamTools

struct ReplayCopy: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "copy",
        abstract: "Copy a range of entries from one stream to another, on the same or another Redis.",
        discussion: """
            For example from a production replica to staging: \
            sgctl replay copy --from-url redis://replica:6379 --from-stream S --to-url redis://staging:6379 --to-stream S. \
            Ids are kept by default, so a repeated copy adds nothing twice. Exits 1 when any entry was \
            out of order or rejected.
            """
    )

    @OptionGroup var redis: RedisOptions
    @Option(help: "Redis to read from (default: --redis-url).") var fromURL: String?
    @Option(help: "Stream to read.") var fromStream: String
    @Option(help: "Redis to write to (default: --redis-url).") var toURL: String?
    @Option(help: "Stream to write (default: the same name).") var toStream: String?
    @OptionGroup var range: RangeOptions
    @OptionGroup var write: WriteOptions
    @OptionGroup var report: ReportOptions

    func run() async throws {
        let range = try range.range()
        let pacer = try write.pacer()
        let sourceURL = fromURL ?? redis.redisURL
        let targetURL = toURL ?? redis.redisURL
        let targetStream = toStream ?? fromStream
        if sourceURL == targetURL && targetStream == fromStream {
            throw ValidationError("source and target are the same stream on the same Redis; give --to-stream or --to-url")
        }
        let source = try redis.client(url: sourceURL)
        defer { source.close() }
        let target = try redis.client(url: targetURL)
        defer { target.close() }
        let length = Int(try await source.send("XLEN", fromStream).int ?? 0)
        let total = range.start == "-" && range.end == "+" ? min(length, range.limit ?? Int.max) : range.limit
        var progress = ProgressDisplay(label: "copy", total: total, enabled: !report.quiet)
        var run = ReplayRun(
            importer: StreamImporter(client: target, stream: targetStream, mode: write.ids.mode, dryRun: write.dryRun),
            pacer: pacer, batchSize: write.batch)
        try await StreamRangeReader(client: source, stream: fromStream, pageSize: max(write.batch, 100)).forEachPage(range) { page in
            progress.update(try await run.feed(page) { progress.update($0) })
        }
        let summary = try await run.finish()
        progress.finish(summary.read)
        if report.json { printJSON(summary.json(dryRun: write.dryRun)) } else { print(summary.text(dryRun: write.dryRun)) }
        if !summary.complete { throw ExitCode(1) }
    }
}
