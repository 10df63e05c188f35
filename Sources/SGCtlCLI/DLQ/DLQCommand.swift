import ArgumentParser
import Foundation
import RedisClient
import StreamTools
import StreamWorker

struct DLQCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dlq",
        abstract: "List, show and requeue dead-lettered messages (<stream>:dead).",
        subcommands: [DLQList.self, DLQShow.self, DLQRequeue.self]
    )
}

/// Which dead letters: the input stream and the worker's naming.
struct DeadLetterOptions: ParsableArguments {
    @Option(help: "Input stream; its dead letters are <stream>:dead.") var stream = "sg:stream:inbound"
    @Option(help: "Key prefix.") var keyPrefix = "sg"
    @Option(help: "Field holding the channel id.") var channelField = "channel_id"
    @OptionGroup var layout: PartitionOptions
    @Option(help: "Only this partition's dead letters (ids are unique within one partition stream only).")
    var partition: Int?

    /// One queue per partition stream (one in all for the single-stream layout), with its partition.
    func queues(_ client: RedisClient) throws -> [(partition: Int, queue: DeadLetterQueue)] {
        let keys = try layout.keys(prefix: keyPrefix)
        if let partition, !(0..<keys.partitions).contains(partition) {
            throw ValidationError("--partition must be in 0...\(keys.partitions - 1), got \(partition)")
        }
        return keys.streams(stream).enumerated()
            .filter { partition == nil || $0.offset == partition }
            .map { ($0.offset, DeadLetterQueue(client: client, stream: $0.element, keys: keys, channelField: channelField)) }
    }

    /// The one dead letter with `id`; nil when none has it. Two partitions may hold the same id,
    /// and then `--partition` must say which is meant.
    func find(_ id: String, in queues: [(partition: Int, queue: DeadLetterQueue)]) async throws -> (DeadLetterQueue, DeadLetter)? {
        var found: [(Int, DeadLetterQueue, DeadLetter)] = []
        for (partition, queue) in queues {
            if let letter = try await queue.show(id: id) { found.append((partition, queue, letter)) }
        }
        guard found.count <= 1 else {
            throw CommandFailure("dead letter \(TerminalText.escape(id)) is in partitions \(found.map { String($0.0) }.joined(separator: ", ")); name one with --partition")
        }
        return found.first.map { ($0.1, $0.2) }
    }
}

struct DLQList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List dead letters, oldest first.")

    @OptionGroup var redis: RedisOptions
    @OptionGroup var dead: DeadLetterOptions
    @Option(help: "Only dead letters with this reason.") var reason: String?
    @Option(help: "At most this many.") var count = 50
    @Flag(help: ArgumentHelp(jsonHelp)) var json = false

    func run() async throws {
        guard count > 0 else { throw ValidationError("--count must be positive") }
        let client = try await redis.client()
        defer { client.close() }
        let queues = try dead.queues(client)
        let partitioned = try dead.layout.count() > 1
        var total = 0
        var found: [(partition: Int, letter: DeadLetter)] = []
        for (partition, queue) in queues {
            total += try await queue.count()
            found += try await queue.list(reason: reason, limit: count).map { (partition, $0) }
        }
        // Oldest first across partitions: ids are times.
        found.sort { (StreamID($0.letter.id) ?? .zero) < (StreamID($1.letter.id) ?? .zero) }
        let letters = Array(found.prefix(count))
        let deadStream = WorkerKeys.deadLetters(of: partitioned ? dead.stream + ":{p*}" : dead.stream)
        if json {
            printJSON(.object([
                ("stream", .string(deadStream)), ("total", JSONValue(total)),
                ("dead_letters", .array(letters.map { partitioned ? Self.tagged($0.letter.json, partition: $0.partition) : $0.letter.json })),
            ]))
            return
        }
        let e = TerminalText.escape
        print("\(e(deadStream)): \(total) dead letters" + (reason.map { ", showing reason \(e($0))" } ?? ""))
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let rows = letters.map { partition, letter in
            (partitioned ? [String(partition)] : []) + [
                letter.id, letter.reason, letter.channel(field: dead.channelField) ?? "-", letter.deliveries.map(String.init) ?? "-",
                letter.timeMilliseconds.map { GroupReport.formatMilliseconds(max(0, now - $0)) + " ago" } ?? "-",
                letter.originalID ?? "-",
            ]
        }
        let header = (partitioned ? ["partition"] : []) + ["id", "reason", "channel", "deliveries", "when", "original id"]
        for line in Table.render(header: header, rows: rows, rightAligned: partitioned ? [0, 4] : [3]) {
            print(line)
        }
        if letters.count == count && total > count { print("(first \(count); --count for more)") }
    }
}

extension DLQList {
    /// A dead letter's JSON with its partition in front.
    static func tagged(_ json: JSONValue, partition: Int) -> JSONValue {
        guard case .object(let members) = json else { return json }
        return .object([("partition", JSONValue(partition))] + members)
    }
}

struct DLQShow: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "Show one dead letter with all its original fields.")

    @OptionGroup var redis: RedisOptions
    @OptionGroup var dead: DeadLetterOptions
    @Argument(help: "Dead-letter entry id (as dlq list shows it).") var id: String
    @Flag(help: ArgumentHelp(jsonHelp)) var json = false

    func run() async throws {
        let client = try await redis.client()
        defer { client.close() }
        let letter: DeadLetter
        do {
            guard let found = try await dead.find(id, in: try dead.queues(client)) else { throw DeadLetterError.notFound(id) }
            letter = found.1
        } catch let error as DeadLetterError {
            throw CommandFailure(error.description)
        }
        if json { printJSON(letter.json); return }
        let e = TerminalText.escape
        print("dead letter \(e(letter.id))")
        print("  original id  \(e(letter.originalID ?? "-")) on \(e(letter.stream ?? "-"))")
        print("  reason       \(e(letter.reason))" + (letter.detail.map { ": \(e($0))" } ?? ""))
        print("  deliveries   \(letter.deliveries.map(String.init) ?? "-"), consumer \(e(letter.consumer ?? "-"))")
        if let ms = letter.timeMilliseconds {
            print("  time         \(Date(timeIntervalSince1970: Double(ms) / 1000))")
        }
        print("  fields:")
        for field in letter.fields {
            print("    \(e(FieldText.encode(field.name))) = \(e(FieldText.encode(field.value)))")
        }
    }
}

struct DLQRequeue: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "requeue",
        abstract: "Move dead letters back onto the input stream, keeping their fields and recording the requeue.",
        discussion: """
            The new entry has the original fields in their order plus sg_requeued_from (the dead-letter id) and \
            sg_requeues (a count). A valid seq is replaced by the channel's next one (the old seq is kept in \
            sg_original_seq), because the worker counts the dead-lettered seq as done; --keep-seq keeps it. \
            The dead letter is removed and the move is logged in <stream>:dead:requeued, in one script.
            """
    )

    @OptionGroup var redis: RedisOptions
    @OptionGroup var dead: DeadLetterOptions
    @Argument(help: "Dead-letter ids to requeue.") var ids: [String] = []
    @Flag(help: "Requeue every dead letter (with --reason: every one with that reason).") var all = false
    @Option(help: "Only dead letters with this reason.") var reason: String?
    @Flag(help: "Keep the original seq instead of stamping the channel's next one.") var keepSeq = false
    @Flag(help: "Print what would be requeued; change nothing.") var dryRun = false
    @Flag(help: ArgumentHelp(jsonHelp)) var json = false

    func validate() throws {
        if ids.isEmpty && !all { throw ValidationError("name the dead letters to requeue: ids, or --all (optionally with --reason)") }
        if !ids.isEmpty && all { throw ValidationError("give ids or --all, not both") }
        for id in ids where StreamID(id) == nil { throw ValidationError("'\(id)' is not a stream id (ms-seq)") }
    }

    func run() async throws {
        let client = try await redis.client()
        defer { client.close() }
        let queues = try dead.queues(client)
        // Each letter goes back onto its own partition stream, which its channel maps to.
        var letters: [(DeadLetterQueue, DeadLetter)] = []
        var notFound: [String] = []
        var otherReason: [String] = []
        if all {
            for (_, queue) in queues { letters += try await queue.list(reason: reason).map { (queue, $0) } }
        } else {
            for id in ids {
                guard let (queue, letter) = try await dead.find(id, in: queues) else { notFound.append(id); continue }
                if let reason, letter.reason != reason { otherReason.append(id); continue }
                letters.append((queue, letter))
            }
        }
        var outcomes: [RequeueOutcome] = []
        for (queue, letter) in letters {
            outcomes.append(try await queue.requeue(letter, restampSeq: !keepSeq, dryRun: dryRun))
        }
        let requeued = outcomes.filter { if case .requeued = $0 { return true } else { return false } }.count
        let missing = outcomes.filter { if case .missing = $0 { return true } else { return false } }.count
        if json {
            printJSON(.object([
                ("dry_run", .bool(dryRun)),
                (dryRun ? "would_requeue" : "requeued", JSONValue(dryRun ? outcomes.count : requeued)),
                ("missing", JSONValue(missing + notFound.count)),
                ("not_found", .array(notFound.map { .string($0) })),
                ("other_reason", .array(otherReason.map { .string($0) })),
                ("entries", .array(outcomes.map(\.json))),
            ]))
        } else {
            for outcome in outcomes { print(outcome.text) }
            let e = TerminalText.escape
            for id in notFound { print("\(e(id)): no such dead letter") }
            for id in otherReason { print("\(e(id)): reason is not \(e(reason ?? "")), skipped") }
            print(dryRun ? "dry run: would requeue \(outcomes.count) onto \(e(dead.stream))" : "requeued \(requeued) onto \(e(dead.stream))")
        }
        if !notFound.isEmpty { throw ExitCode(1) }
    }
}
