import ArgumentParser
import RedisClient
import StreamTools
import StreamWorker

struct ReplayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Export, import and copy stream entries, and move a group's position (see docs/sgctl.md).",
        subcommands: [ReplayExport.self, ReplayImport.self, ReplayCopy.self, ReplayReset.self]
    )
}

/// `--from`, `--to` and `--count`, shared by export and copy.
struct RangeOptions: ParsableArguments {
    @Option(help: "First entry: an id (ms or ms-seq) or an ISO 8601 time; a ( prefix makes it exclusive. Default: the start.")
    var from: String?
    @Option(help: "Last entry: an id (ms or ms-seq) or an ISO 8601 time; a ( prefix makes it exclusive. Default: the end.")
    var to: String?
    @Option(help: "At most this many entries.")
    var count: Int?

    func range() throws -> EntryRange {
        do {
            return try EntryRange.parse(from: from, to: to, count: count)
        } catch {
            throw ValidationError(error.description)
        }
    }
}

/// `--ids`: one option with its values listed, rather than two flags that exclude each other.
enum IDOption: String, ExpressibleByArgument, CaseIterable {
    case keep, new

    var mode: IDMode { self == .keep ? .keep : .new }
}

/// `--seq`: what the replay does with each entry's seq.
enum SeqOption: String, ExpressibleByArgument, CaseIterable {
    case keep, restamp

    var mode: SeqMode { self == .keep ? .keep : .restamp }
}

/// `--channel` and `--channel-field`, shared by export, import and copy.
struct ChannelOptions: ParsableArguments {
    @Option(help: "Only this channel's entries.")
    var channel: String?
    @Option(help: "Field holding the channel id.")
    var channelField = "channel_id"

    func filter(_ entries: [ExportedEntry]) -> [ExportedEntry] {
        guard let channel else { return entries }
        return entries.filter { $0.belongs(to: channel, channelField: channelField) }
    }
}

/// How an import or copy writes.
struct WriteOptions: ParsableArguments {
    @Option(help: ArgumentHelp(
        "Entry ids: keep = each entry keeps its id and ids already present are skipped, so a repeated run adds nothing twice; new = Redis assigns ids, so a repeated run appends again."))
    var ids: IDOption = .keep
    @Option(help: ArgumentHelp(
        "Seqs: keep = as stamped, refused (nothing written) when the target's state already has them; restamp = each entry gets its channel's next seq in the target, so it applies after the target's state."))
    var seq: SeqOption = .keep
    @OptionGroup var namespace: NamespaceOptions
    @Option(help: "At most this many entries per second.")
    var rate: Double?
    @Option(help: "Keep the original relative timing (from the entry ids), scaled: 2 = twice as fast.")
    var speed: Double?
    @Option(help: "Entries per pipelined batch.")
    var batch = 128
    @Flag(help: "Read and report what would be written; write nothing.")
    var dryRun = false

    func pacer() throws -> Pacer {
        guard batch > 0 else { throw ValidationError("--batch must be positive") }
        do {
            return try Pacer(rate: rate, speed: speed)
        } catch {
            throw ValidationError(error.description)
        }
    }

    /// The target environment and the stream's name in it.
    func target(stream: String?) throws -> (KeyNamespace, String) {
        let environment = try namespace.resolved()
        guard let stream = stream ?? (environment.name != nil ? environment.defaultStream : nil) else {
            throw ValidationError("give the stream to write (--stream, --to-stream) or a --namespace")
        }
        return (environment, environment.stream(stream))
    }

    func importer(client: RedisClient, stream: String, keys: WorkerKeys, channelField: String) -> StreamImporter {
        StreamImporter(client: client, stream: stream, mode: ids.mode, dryRun: dryRun,
                       target: ReplayTarget(keys: keys, channelField: channelField, seqMode: seq.mode))
    }
}

/// The check a replay with kept seqs makes before writing: each channel must continue exactly
/// where the target's state is. `pages` is called once and hands over every entry to be replayed.
func checkKeptSeqs(_ importer: StreamImporter, keyPrefix: String,
                   pages: (_ body: ([ExportedEntry]) async throws -> Void) async throws -> Void) async throws -> SeqPlan {
    var plan = SeqPlan()
    var predicted: [String: StreamID] = [:]
    try await pages { entries in try await importer.notePlan(entries, into: &plan, predictedLastIDs: &predicted) }
    let conflicts = try await importer.conflicts(plan)
    // Duplicates would be dropped in silence: refused. A gap is visible (the worker waits, then
    // records skipped_seqs), and a hand-made file may mean it: warned about.
    let duplicates = conflicts.filter { $0.kind == .duplicates }
    if !duplicates.isEmpty {
        throw CommandFailure((importer.dryRun ? "dry run: " : "") + SeqConflict.refusal(duplicates, keyPrefix: keyPrefix))
    }
    for gap in conflicts.prefix(10) { writeStderr("warning: \(gap); --seq restamp avoids that\n") }
    if conflicts.count > 10 { writeStderr("warning: … and \(conflicts.count - 10) more channels with a gap\n") }
    return plan
}

/// Flags about what the command prints.
struct ReportOptions: ParsableArguments {
    @Flag(help: ArgumentHelp(jsonHelp))
    var json = false
    @Flag(name: .shortAndLong, help: "No progress display on stderr.")
    var quiet = false
}
