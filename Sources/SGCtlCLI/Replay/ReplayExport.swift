import ArgumentParser
import RedisClient
import StreamTools

struct ReplayExport: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a stream's entries as JSONL: one {\"id\", \"fields\"} object per line.",
        discussion: """
            Field names and values that are not valid UTF-8 are written as "b64:" followed by \
            their base64, so every byte survives an export and import.
            """
    )

    @OptionGroup var redis: RedisOptions
    @Option(help: "Stream to read (with partitions, its partition streams one after another).") var stream: String
    @Option(help: "Key prefix the partition streams are laid out under (the worker's --key-prefix).") var keyPrefix = "sg"
    @OptionGroup var layout: PartitionOptions
    @OptionGroup var range: RangeOptions
    @OptionGroup var channels: ChannelOptions
    @Option(name: .shortAndLong, help: "Write to this file instead of stdout.") var output: String?
    @OptionGroup var report: ReportOptions

    func run() async throws {
        let range = try range.range()
        let client = try await redis.client()
        defer { client.close() }
        let reader = StreamRangeReader(client: client, streams: try layout.keys(prefix: keyPrefix).streams(stream))
        // A typo in --stream must not look like an empty export.
        guard try await !reader.existing().isEmpty else { throw CommandFailure(Self.missing(stream, reader)) }
        let sink = try LineSink(path: output)
        let length = try await reader.length()
        let total = range.start == "-" && range.end == "+" && channels.channel == nil ? min(length, range.limit ?? Int.max) : range.limit
        var progress = ProgressDisplay(label: "export", total: total, enabled: !report.quiet)
        var written = 0
        try await reader.forEachPage(range) { all in
            let page = channels.filter(all)
            try await sink.write(page.map(EntryCodec.encode))
            written += page.count
            progress.update(written)
        }
        try await sink.close()
        progress.finish(written)
        // The data may be on stdout: the summary then goes to stderr.
        let summary = report.json
            ? JSONValue.object([("stream", .string(stream)), ("exported", JSONValue(written))]).serialized
            : "exported \(written) entries from \(stream)"
        if sink.isStdout { writeStderr(summary + "\n") } else { print(summary) }
    }

    /// Why nothing can be read: the stream, or with partitions each of its partition streams, is missing.
    static func missing(_ stream: String, _ reader: StreamRangeReader) -> String {
        reader.streams.count == 1
            ? "stream '\(stream)' does not exist"
            : "none of the \(reader.streams.count) partition streams of '\(stream)' (\(reader.streams[0]) …) exists; is --partitions the workers' count?"
    }
}
