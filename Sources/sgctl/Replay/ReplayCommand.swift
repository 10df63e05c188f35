import ArgumentParser
import StreamTools

struct ReplayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Export, import and copy stream entries, and move a group's position (see docs/sgctl.md).",
        subcommands: [ReplayExport.self, ReplayImport.self, ReplayCopy.self, ReplayReset.self]
    )
}

/// `--from`, `--to` and `--count`, shared by export and copy.
struct RangeOptions: ParsableArguments {
    @Option(help: "First entry id (ms or ms-seq; '(' prefix for exclusive). Default: the start.")
    var from: String?
    @Option(help: "Last entry id (ms or ms-seq; '(' prefix for exclusive). Default: the end.")
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

enum IDModeFlag: String, EnumerableFlag {
    case keepIds, newIds

    static func help(for value: IDModeFlag) -> ArgumentHelp? {
        switch value {
        case .keepIds: return "Keep each entry's id (default): ids already present are reported and skipped."
        case .newIds: return "Let Redis assign new ids: always appends, so a repeated run duplicates."
        }
    }

    var mode: IDMode { self == .keepIds ? .keep : .new }
}

/// How an import or copy writes.
struct WriteOptions: ParsableArguments {
    @Flag var ids: IDModeFlag = .keepIds
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
}

/// Flags about what the command prints.
struct ReportOptions: ParsableArguments {
    @Flag(help: "Print the report as one JSON object.")
    var json = false
    @Flag(help: "No progress display on stderr.")
    var quiet = false
}
