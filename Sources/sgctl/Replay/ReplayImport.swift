import ArgumentParser
import Foundation
import RedisClient
import StreamTools

struct ReplayImport: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Append JSONL entries (as written by export) to a stream, from a file or stdin.",
        discussion: """
            With --keep-ids (the default) an id that is already in the stream is reported and skipped, \
            so a repeated import adds nothing twice; an id at or below the stream's last id that is not \
            present cannot be inserted and is reported as out of order. Exits 1 when any entry was \
            out of order or rejected.
            """
    )

    @OptionGroup var redis: RedisOptions
    @Option(help: "Stream to append to.") var stream: String
    @Argument(help: "JSONL file; '-' or nothing reads stdin.") var file: String?
    @OptionGroup var write: WriteOptions
    @OptionGroup var report: ReportOptions

    func run() async throws {
        let pacer = try write.pacer()
        let client = try redis.client()
        defer { client.close() }
        let source = try LineSource(path: file)
        let total = try await Self.lineCount(file)
        let importer = StreamImporter(client: client, stream: stream, mode: write.ids.mode, dryRun: write.dryRun)
        var run = ReplayRun(importer: importer, pacer: pacer, batchSize: write.batch)
        var progress = ProgressDisplay(label: "import", total: total, enabled: !report.quiet)
        while true {
            let lines = try await source.next(max: write.batch)
            if lines.isEmpty { break }
            var entries: [ExportedEntry] = []
            var badLine: EntryCodecError?
            for (number, line) in lines {
                do throws(EntryCodecError) {
                    guard let entry = try EntryCodec.decode(line, lineNumber: number) else { continue }
                    if write.ids == .keepIds && entry.id == nil {
                        throw EntryCodecError(line: number, message: "no \"id\": --keep-ids needs one on every line (--new-ids lets Redis assign them)")
                    }
                    entries.append(entry)
                } catch {
                    badLine = error
                    break
                }
            }
            do {
                // Entries before a bad line still go in, so "everything before line N" is true.
                progress.update(try await run.feed(entries) { progress.update($0) })
            } catch let error as ImportError {
                throw CommandFailure(error.description)
            }
            if let badLine {
                let summary = try await run.finish()
                progress.finish(summary.read)
                throw CommandFailure("\(source.name): \(badLine.description); the \(summary.read) entries before it were handled "
                    + "(\(summary.added) added, \(summary.alreadyPresent) already present, \(summary.outOfOrder + summary.rejected) skipped)")
            }
        }
        let summary = try await run.finish()
        progress.finish(summary.read)
        if report.json { printJSON(summary.json(dryRun: write.dryRun)) } else { print(summary.text(dryRun: write.dryRun)) }
        if !summary.complete { throw ExitCode(1) }
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
