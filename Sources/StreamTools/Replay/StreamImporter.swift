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
    /// The first few skipped or rejected ids with why, for the report.
    public var problems: [String] = []
    public static let maxProblems = 20

    public init() {}

    public mutating func record(_ outcome: ImportOutcome) {
        read += 1
        switch outcome {
        case .added, .wouldAdd: added += 1
        case .alreadyPresent(let id):
            alreadyPresent += 1
            note("\(id): already present, skipped")
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
        lines += problems.map { "  " + TerminalText.escape($0) }
        let more = alreadyPresent + outOfOrder + rejected - problems.count
        if more > 0 { lines.append("  … and \(more) more") }
        return lines.joined(separator: "\n")
    }
}

/// Appends entries to a stream in pipelined batches, with the id policy of ``IDMode``.
/// With `dryRun` it reads instead and predicts each outcome, writing nothing.
public final class StreamImporter: Sendable {
    public let client: RedisClient
    public let stream: String
    public let mode: IDMode
    public let dryRun: Bool

    public init(client: RedisClient, stream: String, mode: IDMode, dryRun: Bool) {
        self.client = client
        self.stream = stream
        self.mode = mode
        self.dryRun = dryRun
    }

    /// Imports `entries` in order; one outcome per entry, in order.
    public func add(_ entries: [ExportedEntry], predictedLastID: inout StreamID?) async throws -> [ImportOutcome] {
        if entries.isEmpty { return [] }
        // With kept ids, `ids[i]` is entry i's id; otherwise every entry gets `*`.
        let ids = entries.map { mode == .keep ? $0.id : "*" }
        if let missing = ids.firstIndex(where: { $0 == nil }) {
            throw ImportError.missingID(index: missing)
        }
        let explicit = ids.map { $0 ?? "*" }
        if dryRun { return try await predict(entries, ids: explicit, lastID: &predictedLastID) }
        let commands = zip(entries, explicit).map { entry, id -> RedisCommand in
            var command = RedisCommand("XADD", stream, id)
            for field in entry.fields {
                command.append(field.name)
                command.append(field.value)
            }
            return command
        }
        let results = try await client.pipeline(commands)
        var outcomes: [ImportOutcome] = []
        var toCheck: [Int] = []
        for (i, result) in results.enumerated() {
            switch result {
            case .success(let reply):
                outcomes.append(.added(id: reply.string ?? entries[i].id ?? "?"))
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
            let present = try await presence(toCheck.map { explicit[$0] })
            let last = try await lastGeneratedID()?.description ?? "?"
            for (k, i) in toCheck.enumerated() {
                let id = explicit[i]
                outcomes[i] = present[k] ? .alreadyPresent(id: id) : .outOfOrder(id: id, lastID: last)
            }
        }
        return outcomes
    }

    /// The id Redis compares an explicit XADD id against (it survives deletions), or nil when
    /// the stream does not exist.
    public func lastGeneratedID() async throws -> StreamID? {
        let reply: RESPValue
        do {
            reply = try await client.send("XINFO", "STREAM", stream)
        } catch let error as RedisError where error.serverCode == "ERR" {
            return nil
        }
        return InfoReply(reply)["last-generated-id"]?.string.flatMap(StreamID.init)
    }

    private func presence(_ ids: [String]) async throws -> [Bool] {
        let results = try await client.pipeline(ids.map { RedisCommand("XRANGE", stream, $0, $0) })
        return try results.map { try !($0.get().array ?? []).isEmpty }
    }

    private func predict(_ entries: [ExportedEntry], ids: [String], lastID: inout StreamID?) async throws -> [ImportOutcome] {
        guard mode == .keep else { return entries.map { _ in .wouldAdd(id: nil) } }
        if lastID == nil { lastID = try await lastGeneratedID() ?? .zero }
        let present = try await presence(ids)
        var outcomes: [ImportOutcome] = []
        for (i, text) in ids.enumerated() {
            guard let id = StreamID(text) else {
                outcomes.append(.rejected(id: text, message: "not a stream id"))
                continue
            }
            if present[i] {
                outcomes.append(.alreadyPresent(id: text))
            } else if id == .zero {
                outcomes.append(.rejected(id: text, message: "ERR The ID specified in XADD must be greater than 0-0"))
            } else if let last = lastID, id <= last {
                outcomes.append(.outOfOrder(id: text, lastID: last.description))
            } else {
                outcomes.append(.wouldAdd(id: text))
                lastID = id
            }
        }
        return outcomes
    }
}

public enum ImportError: Error, Sendable, CustomStringConvertible {
    case missingID(index: Int)

    public var description: String {
        switch self {
        case .missingID: return "an entry has no \"id\": --keep-ids needs one on every line (use --new-ids to let Redis assign them)"
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
