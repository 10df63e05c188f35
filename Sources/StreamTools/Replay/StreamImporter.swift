import RedisClient
import StreamWorker

/// How an import names the entries it adds.
public enum IDMode: String, Sendable, Equatable {
    /// Keep each entry's id: re-running an import adds nothing twice, and ids at or below
    /// the stream's last id are reported and skipped.
    case keep
    /// Let Redis assign new ids (`*`): always appends, but cannot tell a repeated import.
    case new
}

/// What happened to one entry of an import.
public enum ImportOutcome: Sendable, Equatable {
    case added(id: String)
    /// `--dry-run`: would have been added (with this id, when ids are kept).
    case wouldAdd(id: String?)
    /// An entry with this id is already in the stream; skipped.
    case alreadyPresent(id: String)
    /// The id is at or below the stream's last id but no such entry exists (deleted, trimmed,
    /// or the input is not sorted); XADD cannot insert it, so it is skipped.
    case outOfOrder(id: String, lastID: String)
    /// Redis refused the entry for another reason.
    case rejected(id: String?, message: String)
}

/// Tallies of an import, for the summary line and `--json`.
public struct ImportSummary: Sendable, Equatable {
    public var read = 0
    public var added = 0
    public var alreadyPresent = 0
    public var outOfOrder = 0
    public var rejected = 0
    /// The first few out-of-order or rejected ids with why, for the report. Entries already
    /// present are the expected result of a repeated run, so they are folded into one line.
    public var problems: [String] = []
    /// The first and last id found already present.
    public var firstPresent: String?
    public var lastPresent: String?
    public static let maxProblems = 20

    public init() {}

    public mutating func record(_ outcome: ImportOutcome) {
        read += 1
        switch outcome {
        case .added, .wouldAdd: added += 1
        case .alreadyPresent(let id):
            alreadyPresent += 1
            if firstPresent == nil { firstPresent = id }
            lastPresent = id
        case .outOfOrder(let id, let last):
            outOfOrder += 1
            note("\(id): at or below the stream's last id \(last) and not present, skipped")
        case .rejected(let id, let message):
            rejected += 1
            note("\(id ?? "(new id)"): rejected: \(message)")
        }
    }

    private mutating func note(_ text: String) {
        if problems.count < Self.maxProblems { problems.append(text) }
    }

    /// Skipped-as-present entries are the expected result of a repeated import; anything else
    /// that was not added means data the user asked for is missing.
    public var complete: Bool { outOfOrder == 0 && rejected == 0 }

    public func json(dryRun: Bool) -> JSONValue {
        .object([
            ("dry_run", .bool(dryRun)),
            ("read", JSONValue(read)),
            (dryRun ? "would_add" : "added", JSONValue(added)),
            ("already_present", JSONValue(alreadyPresent)),
            ("out_of_order", JSONValue(outOfOrder)),
            ("rejected", JSONValue(rejected)),
            ("problems", .array(problems.map { .string($0) })),
        ])
    }

    public func text(dryRun: Bool) -> String {
        var lines = ["\(dryRun ? "dry run: would add" : "added") \(added) of \(read) entries; \(alreadyPresent) already present, \(outOfOrder) out of order, \(rejected) rejected"]
        if let first = firstPresent, let last = lastPresent {
            lines.append(alreadyPresent == 1 ? "  \(TerminalText.escape(first)): already present, skipped"
                : "  \(alreadyPresent) already present, skipped (\(TerminalText.escape(first)) … \(TerminalText.escape(last)))")
        }
        lines += problems.map { "  " + TerminalText.escape($0) }
        let more = outOfOrder + rejected - problems.count
        if more > 0 { lines.append("  … and \(more) more") }
        return lines.joined(separator: "\n")
    }
}

/// Where a replay's channels live in the target, for what it does with `seq`.
public struct ReplayTarget: Sendable, Equatable {
    /// The target's keys (its namespace), whose seq counters and state the replay reads and stamps.
    public var keys: WorkerKeys
    public var channelField: String
    public var seqMode: SeqMode

    public init(keys: WorkerKeys, channelField: String = "channel_id", seqMode: SeqMode = .keep) {
        self.keys = keys
        self.channelField = channelField
        self.seqMode = seqMode
    }
}

/// Appends entries to a stream in pipelined batches, with the id policy of ``IDMode``.
/// With `dryRun` it reads instead and predicts each outcome, writing nothing.
public final class StreamImporter: Sendable {
    public let client: RedisClient
    public let stream: String
    public let mode: IDMode
    public let dryRun: Bool
    /// nil: entries go in as they are, and their seqs are not looked at.
    public let target: ReplayTarget?

    public init(client: RedisClient, stream: String, mode: IDMode, dryRun: Bool, target: ReplayTarget? = nil) {
        self.client = client
        self.stream = stream
        self.mode = mode
        self.dryRun = dryRun
        self.target = target
    }

    /// The stream `entry` is appended to: `stream` itself, or with a partitioned target the
    /// partition stream of the entry's channel. An entry without a channel goes to partition 0,
    /// where the worker dead-letters it with its reason.
    public func stream(for entry: ExportedEntry) -> String {
        guard let target, target.keys.isPartitioned else { return stream }
        guard case let (channel, _)? = entry.channelAndSeq(channelField: target.channelField) else {
            return target.keys.stream(stream, partition: 0)
        }
        return target.keys.stream(stream, channel: channel)
    }

    /// The command that adds `entry` under `id`: a plain XADD, or with `--seq restamp` and an
    /// entry that has a channel and a seq, the restamp script.
    private func addCommand(_ entry: ExportedEntry, id: String) -> RedisCommand {
        let stream = stream(for: entry)
        if let target, target.seqMode == .restamp, case let (channel, _?)? = entry.channelAndSeq(channelField: target.channelField),
           let seqIndex = entry.fields.firstIndex(where: { $0.name == Array("seq".utf8) }) {
            var command = RedisCommand("EVALSHA", ReplayScripts.restamp.sha1, 3, target.keys.seq(channel: channel), stream,
                                       target.keys.state(channel: channel), id, 3 + 2 * seqIndex + 1)
            for field in entry.fields {
                command.append(field.name)
                command.append(field.value)
            }
            return command
        }
        var command = RedisCommand("XADD", stream, id)
        for field in entry.fields {
            command.append(field.name)
            command.append(field.value)
        }
        return command
    }

    /// Per channel, the highest seq the target has applied or stamped: `max(last_seq, seq counter)`.
    public func reachedSeqs(channels: [String]) async throws -> [String: Int64] {
        guard let keys = target?.keys, !channels.isEmpty else { return [:] }
        var reached: [String: Int64] = [:]
        for chunk in stride(from: 0, to: channels.count, by: 500).map({ Array(channels[$0..<min($0 + 500, channels.count)]) }) {
            let commands = chunk.flatMap { [RedisCommand("HGET", keys.state(channel: $0), "last_seq"), RedisCommand("GET", keys.seq(channel: $0))] }
            let replies = try await client.pipeline(commands)
            for (i, channel) in chunk.enumerated() {
                let lastSeq = Int64(try replies[2 * i].get().string ?? "") ?? 0
                let counter = Int64(try replies[2 * i + 1].get().string ?? "") ?? 0
                reached[channel] = max(lastSeq, counter)
            }
        }
        return reached
    }

    /// After a replay with kept seqs: raises each channel's seq counter to the highest seq
    /// replayed, so a later replay or producer continues above them (and a repeated replay with
    /// new ids is refused rather than dropped as duplicates).
    public func raiseCounters(_ highest: [String: Int64]) async throws {
        guard let keys = target?.keys, !dryRun, !highest.isEmpty else { return }
        try await client.send("SCRIPT", "LOAD", ReplayScripts.raiseCounter.source)
        let commands = highest.sorted { $0.key < $1.key }.map {
            RedisCommand("EVALSHA", ReplayScripts.raiseCounter.sha1, 1, keys.seq(channel: $0.key), String($0.value))
        }
        for result in try await client.pipeline(commands) { _ = try result.get() }
    }

    /// Imports `entries` in order; one outcome per entry, in order.
    /// `predictedLastIDs` carries a dry run's idea of each stream's last id from batch to batch.
    public func add(_ entries: [ExportedEntry], predictedLastIDs: inout [String: StreamID]) async throws -> [ImportOutcome] {
        if entries.isEmpty { return [] }
        // With kept ids, `ids[i]` is entry i's id; otherwise every entry gets `*`.
        let ids = entries.map { mode == .keep ? $0.id : "*" }
        if let missing = ids.firstIndex(where: { $0 == nil }) {
            throw ImportError.missingID(index: missing)
        }
        let explicit = ids.map { $0 ?? "*" }
        let streams = entries.map(stream(for:))
        if dryRun { return try await predict(streams: streams, ids: explicit, lastIDs: &predictedLastIDs) }
        var commands = zip(entries, explicit).map { addCommand($0, id: $1) }
        // Loaded in the same pipeline, ahead of the EVALSHAs, so a flushed script cache cannot fail them.
        let restamping = target?.seqMode == .restamp
        if restamping { commands.insert(RedisCommand("SCRIPT", "LOAD", ReplayScripts.restamp.source), at: 0) }
        var results = try await client.pipeline(commands)
        if restamping { _ = try results.removeFirst().get() }
        var outcomes: [ImportOutcome] = []
        var toCheck: [Int] = []
        for (i, result) in results.enumerated() {
            switch result {
            case .success(let reply):
                // XADD answers the id; the restamp script answers {id, seq}.
                outcomes.append(.added(id: reply.string ?? reply.array?.first?.string ?? entries[i].id ?? "?"))
            case .failure(let error):
                if mode == .keep, case .server(let e) = error, e.message.contains("equal or smaller") {
                    toCheck.append(i)
                    outcomes.append(.rejected(id: entries[i].id, message: e.description))
                } else if case .server(let e) = error {
                    outcomes.append(.rejected(id: entries[i].id, message: e.description))
                } else {
                    throw error
                }
            }
        }
        if !toCheck.isEmpty {
            let present = try await presence(toCheck.map { (streams[$0], explicit[$0]) })
            var lastIDs: [String: String] = [:]
            for (k, i) in toCheck.enumerated() {
                let id = explicit[i]
                if present[k] { outcomes[i] = .alreadyPresent(id: id); continue }
                if lastIDs[streams[i]] == nil { lastIDs[streams[i]] = try await lastGeneratedID(of: streams[i])?.description ?? "?" }
                outcomes[i] = .outOfOrder(id: id, lastID: lastIDs[streams[i]]!)
            }
        }
        return outcomes
    }

    /// The id Redis compares an explicit XADD id against (it survives deletions), or nil when
    /// the stream does not exist.
    public func lastGeneratedID() async throws -> StreamID? { try await lastGeneratedID(of: stream) }

    func lastGeneratedID(of stream: String) async throws -> StreamID? {
        let reply: RESPValue
        do {
            reply = try await client.send("XINFO", "STREAM", stream)
        } catch let error as RedisError where error.serverCode == "ERR" {
            return nil
        }
        return InfoReply(reply)["last-generated-id"]?.string.flatMap(StreamID.init)
    }

    private func presence(_ entries: [(stream: String, id: String)]) async throws -> [Bool] {
        let results = try await client.pipeline(entries.map { RedisCommand("XRANGE", $0.stream, $0.id, $0.id) })
        return try results.map { try !($0.get().array ?? []).isEmpty }
    }

    private func predict(streams: [String], ids: [String], lastIDs: inout [String: StreamID]) async throws -> [ImportOutcome] {
        guard mode == .keep else { return ids.map { _ in .wouldAdd(id: nil) } }
        let present = try await presence(Array(zip(streams, ids)))
        var outcomes: [ImportOutcome] = []
        for (i, text) in ids.enumerated() {
            guard let id = StreamID(text) else {
                outcomes.append(.rejected(id: text, message: "not a stream id"))
                continue
            }
            if lastIDs[streams[i]] == nil { lastIDs[streams[i]] = try await lastGeneratedID(of: streams[i]) ?? .zero }
            if present[i] {
                outcomes.append(.alreadyPresent(id: text))
            } else if id == .zero {
                outcomes.append(.rejected(id: text, message: "ERR The ID specified in XADD must be greater than 0-0"))
            } else if let last = lastIDs[streams[i]], id <= last {
                outcomes.append(.outOfOrder(id: text, lastID: last.description))
            } else {
                outcomes.append(.wouldAdd(id: text))
                lastIDs[streams[i]] = id
            }
        }
        return outcomes
    }
}

public enum ImportError: Error, Sendable, CustomStringConvertible {
    case missingID(index: Int)

    public var description: String {
        switch self {
        case .missingID: return "an entry has no \"id\": --ids keep needs one on every line (--ids new lets Redis assign them)"
        }
    }
}

/// The flat `[name, value, name, value, …]` replies of XINFO.
struct InfoReply {
    let pairs: [(String, RESPValue)]

    init(_ reply: RESPValue) {
        var pairs: [(String, RESPValue)] = []
        if let flat = reply.array {
            var i = 0
            while i + 1 < flat.count {
                if let name = flat[i].string { pairs.append((name, flat[i + 1])) }
                i += 2
            }
        }
        self.pairs = pairs
    }

    subscript(name: String) -> RESPValue? { pairs.first { $0.0 == name }?.1 }
}
