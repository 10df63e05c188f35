import ArgumentParser
import Foundation
import RedisClient
import StreamTools

struct ReplayImport: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Append JSONL entries (as written by export) to a stream, from a file or stdin.",
        discussion: """
            With --ids keep (the default) an id that is already in the stream is counted and skipped, \
            so a repeated import adds nothing twice; an id at or below the stream's last id that is not \
            present cannot be inserted and is reported as out of order. With --seq keep (the default) \
            the import is refused, before anything is written, when a channel's entries would not continue \
            where the target's state is; --seq restamp applies them after it. Exits 1 when any entry was \
            out of order or rejected.
            """
    )

    @OptionGroup var redis: RedisOptions
    @Option(help: "Stream to append to (default with --namespace: its sg…:stream:inbound; a production name is renamed into the namespace).")
    var stream: String?
    @Argument(help: "JSONL file; '-' or nothing reads stdin.") var file: String?
    @OptionGroup var channels: ChannelOptions
    @OptionGroup var write: WriteOptions
    @OptionGroup var report: ReportOptions

    func run() async throws {
        let pacer = try write.pacer()
        let (environment, stream) = try write.target(stream: self.stream)
        let client = try await redis.client()
        defer { client.close() }
        let importer = write.importer(client: client, stream: stream, keys: try write.namespace.keys(), channelField: channels.channelField)
        let fromStdin = file == nil || file == "-"
        // Checking kept seqs reads the input twice; stdin can be read once only, so it is held in memory.
        var held: [[(number: Int, line: [UInt8])]]? = write.seq == .keep && fromStdin ? [] : nil
        if held != nil {
            let source = try LineSource(path: file)
            while case let lines = try await source.next(max: write.batch), !lines.isEmpty { held!.append(lines) }
        }
        let batches = held
        func forEachBatch(_ body: ([(number: Int, line: [UInt8])]) async throws -> Bool) async throws -> String {
            if let batches {
                for lines in batches {
                    if try await !body(lines) { break }
                }
                return "stdin"
            }
            let source = try LineSource(path: file)
            while case let lines = try await source.next(max: write.batch), !lines.isEmpty {
                if try await !body(lines) { break }
            }
            return source.name
        }

        var plan: SeqPlan?
        if write.seq == .keep {
            plan = try await checkKeptSeqs(importer, keyPrefix: environment.keyPrefix) { feed in
                // Up to a bad line, as the import itself goes (and then stops there).
                _ = try await forEachBatch { lines in
                    let (entries, badLine) = decode(lines)
                    try await feed(entries)
                    return badLine == nil
                }
            }
        }

        let total = channels.channel == nil ? try await Self.lineCount(file) : nil
        var run = ReplayRun(importer: importer, pacer: pacer, batchSize: write.batch)
        var progress = ProgressDisplay(label: "import", total: total, enabled: !report.quiet)
        var failure: CommandFailure?
        let name = try await forEachBatch { lines in
            let (entries, badLine) = decode(lines)
            do {
                // Entries before a bad line still go in, so "everything before line N" is true.
                progress.update(try await run.feed(entries) { progress.update($0) })
            } catch let error as ImportError {
                throw CommandFailure(error.description)
            }
            if let badLine {
                failure = CommandFailure(badLine.description)
                return false
            }
            return true
        }
        let summary = try await run.finish()
        progress.finish(summary.read)
        if let failure {
            throw CommandFailure("\(name): \(failure.description); the \(summary.read) entries before it were handled "
                + "(\(summary.added) added, \(summary.alreadyPresent) already present, \(summary.outOfOrder + summary.rejected) skipped)")
        }
        if let plan { try await importer.raiseCounters(plan.channels.mapValues(\.last)) }
        if report.json { printJSON(summary.json(dryRun: write.dryRun)) } else { print(summary.text(dryRun: write.dryRun)) }
        if !summary.complete { throw ExitCode(1) }
    }

    /// The entries of `lines` up to the first bad one, and that line's error.
    func decode(_ lines: [(number: Int, line: [UInt8])]) -> ([ExportedEntry], EntryCodecError?) {
        var entries: [ExportedEntry] = []
        for (number, line) in lines {
            do throws(EntryCodecError) {
                guard let entry = try EntryCodec.decode(line, lineNumber: number) else { continue }
                if write.ids == .keep && entry.id == nil {
                    throw EntryCodecError(line: number, message: "no \"id\": --ids keep needs one on every line (--ids new lets Redis assign them)")
                }
                entries.append(entry)
            } catch {
                return (channels.filter(entries), error)
            }
        }
        return (channels.filter(entries), nil)
    }

    /// Lines in a regular file, for the progress total; nil for stdin and pipes.
    static func lineCount(_ path: String?) async throws -> Int? {
        guard let path, path != "-" else { return nil }
        return try await BlockingIO.run {
            guard let data = try? Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) else { return nil }
            return data.reduce(0) { $0 + ($1 == 0x0A ? 1 : 0) }
        }
    }
}
