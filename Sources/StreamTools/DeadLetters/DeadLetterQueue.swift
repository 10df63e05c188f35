import Foundation
import RedisClient
import StreamWorker

/// The dead letters of one input stream, and moving them back onto it.
public struct DeadLetterQueue: Sendable {
    public let client: RedisClient
    /// The input stream; its dead letters live in `<stream>:dead`.
    public let stream: String
    public let keys: WorkerKeys
    /// The field that names the channel (the worker's `--channel-field`).
    public let channelField: String

    public init(client: RedisClient, stream: String, keys: WorkerKeys = WorkerKeys(), channelField: String = "channel_id") {
        self.client = client
        self.stream = stream
        self.keys = keys
        self.channelField = channelField
    }

    public var deadStream: String { WorkerKeys.deadLetters(of: stream) }
    /// One entry per requeue: `dead_id`, `original_id`, `new_id`, `reason`, `original_seq`, `new_seq`, `time_ms`.
    public var requeueLog: String { deadStream + ":requeued" }

    public func count() async throws -> Int {
        Int(try await client.send("XLEN", deadStream).int ?? 0)
    }

    /// Dead letters oldest first, optionally only those with `reason`, at most `limit` of them.
    /// A dead letter written as several entries is returned whole.
    public func list(reason: String? = nil, limit: Int? = nil) async throws -> [DeadLetter] {
        var out: [DeadLetter] = []
        var remaining = limit ?? Int.max
        var open: DeadLetter?
        func close() {
            guard let letter = open, remaining > 0 else { return }
            open = nil
            if let reason, letter.reason != reason { return }
            out.append(letter)
            remaining -= 1
        }
        // The limit counts matches, so pages are read until it is met rather than XRANGE … COUNT limit.
        var start = "-"
        while remaining > 0 {
            let reply = try await client.send("XRANGE", deadStream, start, "+", "COUNT", 500)
            let page = try StreamRangeReader.entries(reply)
            for entry in page {
                let letter = DeadLetter(id: entry.id ?? "", entryFields: entry.fields)
                if let current = open, current.isContinued(by: letter) {
                    open!.merge(letter)
                    continue
                }
                close()
                // A continuation without its first entry (deleted by hand) is not a dead letter.
                if letter.continues == nil { open = letter }
            }
            guard page.count == 500, let last = page.last?.id else { break }
            start = "(" + last
        }
        close()
        return out
    }

    /// Reason counts over the newest `sample` dead letters (all of them when nil).
    public func reasons(sample: Int? = nil) async throws -> ReasonCounts {
        var counts = ReasonCounts()
        var end = "+"
        var remaining = sample ?? Int.max
        while remaining > 0 {
            let n = min(500, remaining)
            let reply = try await client.send("XREVRANGE", deadStream, end, "-", "COUNT", n)
            let page = try StreamRangeReader.entries(reply)
            for entry in page {
                let letter = DeadLetter(id: entry.id ?? "", entryFields: entry.fields)
                if letter.continues == nil { counts.add(letter.reason) }
            }
            remaining -= page.count
            guard page.count == n, let last = page.last?.id else { break }
            end = "(" + last
        }
        return counts
    }

    public func show(id: String) async throws -> DeadLetter? {
        guard StreamID(id) != nil else { throw DeadLetterError.invalidID(id) }
        let page = try StreamRangeReader.entries(try await client.send("XRANGE", deadStream, id, id))
        guard let first = page.first else { return nil }
        var letter = DeadLetter(id: first.id ?? id, entryFields: first.fields)
        if letter.parts > 1 {
            let rest = try StreamRangeReader.entries(try await client.send("XRANGE", deadStream, "(" + letter.id, "+", "COUNT", letter.parts - 1))
            for entry in rest {
                let part = DeadLetter(id: entry.id ?? "", entryFields: entry.fields)
                guard letter.isContinued(by: part) else { break }
                letter.merge(part)
            }
        }
        return letter
    }

    /// Moves one dead letter back onto the input stream. With `dryRun`, reports what would be appended.
    ///
    /// One optimistic transaction per dead letter (WATCH, then MULTI … EXEC on a connection of its
    /// own), so it is atomic: the entry is appended, the dead letter deleted and the move logged
    /// together, at most once even when two operators requeue at the same time. The append is a
    /// plain XADD rather than a script, so an entry of any size comes back byte for byte.
    public func requeue(_ letter: DeadLetter, restampSeq: Bool, dryRun: Bool) async throws -> RequeueOutcome {
        let entry = RequeueEntry(deadLetter: letter, restampSeq: restampSeq, channelField: channelField)
        if dryRun {
            return .wouldRequeue(deadID: letter.id, fields: entry.fields, restamped: entry.seqIndex != nil)
        }
        guard letter.isComplete else { throw DeadLetterError.incomplete(letter.id, found: 1 + letter.continuationIDs.count, of: letter.parts) }
        let channel = letter.channel(field: channelField) ?? ""
        let seqKey = keys.seq(channel: channel), stateKey = keys.state(channel: channel)
        return try await client.withDedicatedConnection { connection in
            for _ in 0..<50 {
                var watched = [deadStream]
                if entry.seqIndex != nil { watched += [seqKey, stateKey] }
                try await connection.send(RedisCommand("WATCH", watched))
                let still = try StreamRangeReader.entries(try await connection.send("XRANGE", deadStream, letter.id, letter.id))
                if still.isEmpty {
                    try await connection.send("UNWATCH")
                    return .missing(deadID: letter.id)
                }
                var fields = entry.fields
                var transaction: [RedisCommand] = [RedisCommand("MULTI")]
                var newSeq: Int64?
                if let index = entry.seqIndex {
                    // The counter may lag the applied seqs (a stream imported without its counters).
                    let counter = try await connection.send("GET", seqKey).int ?? 0
                    let last = try await connection.send("HGET", stateKey, "last_seq").int ?? 0
                    let next = max(counter, last) + 1
                    guard next <= InboundMessage.maxSeq else {
                        try await connection.send("UNWATCH")
                        throw DeadLetterError.seqExhausted(channel)
                    }
                    fields[index].value = Array(String(next).utf8)
                    newSeq = next
                    transaction.append(RedisCommand("SET", seqKey, next))
                }
                var add = RedisCommand("XADD", stream, "*")
                for field in fields { add.append(field.name); add.append(field.value) }
                transaction.append(add)
                transaction.append(RedisCommand("XDEL", [deadStream, letter.id] + letter.continuationIDs))
                transaction.append(RedisCommand("EVAL", DeadLetterScripts.logRequeue, 2, stream, requeueLog, letter.id,
                                                letter.originalID ?? "", letter.reason, entry.originalSeq.map(String.init) ?? "",
                                                newSeq.map(String.init) ?? "", String(Self.nowMilliseconds())))
                transaction.append(RedisCommand("EXEC"))
                let results = try await connection.pipeline(transaction)
                // EXEC answers nil when a watched key changed meanwhile: read again and retry.
                guard let executed = try results.last?.get().array else { continue }
                if let failed = executed.first(where: { if case .error = $0 { return true } else { return false } }) {
                    throw RedisError.unexpectedReply("requeue transaction: \(failed)")
                }
                let newID = executed.last?.string ?? ""
                return .requeued(deadID: letter.id, newID: newID, newSeq: newSeq)
            }
            throw DeadLetterError.contended(letter.id)
        }
    }

    static func nowMilliseconds() -> Int64 {
        Int64(Date().timeIntervalSince1970 * 1000)
    }
}

/// What a requeue did to one dead letter.
public enum RequeueOutcome: Sendable, Equatable {
    case requeued(deadID: String, newID: String, newSeq: Int64?)
    case wouldRequeue(deadID: String, fields: [StreamField], restamped: Bool)
    /// Gone by the time the script ran: requeued or deleted by someone else meanwhile.
    case missing(deadID: String)

    public var json: JSONValue {
        switch self {
        case .requeued(let dead, let new, let seq):
            return .object([("dead_id", .string(dead)), ("status", "requeued"), ("new_id", .string(new)), ("new_seq", JSONValue(seq))])
        case .wouldRequeue(let dead, let fields, let restamped):
            return .object([("dead_id", .string(dead)), ("status", "would_requeue"), ("restamp_seq", .bool(restamped)), ("fields", EntryCodec.fieldsJSON(fields))])
        case .missing(let dead):
            return .object([("dead_id", .string(dead)), ("status", "missing")])
        }
    }

    /// One line for the terminal (ids escaped: they come from Redis or the command line).
    public var text: String {
        let e = TerminalText.escape
        switch self {
        case .requeued(let dead, let new, let seq):
            return "\(e(dead)) → \(e(new))" + (seq.map { " (seq \($0))" } ?? "")
        case .wouldRequeue(let dead, _, let restamped):
            return "\(e(dead)): would requeue" + (restamped ? " with a new seq" : "")
        case .missing(let dead):
            return "\(e(dead)): no longer in the dead-letter stream, skipped"
        }
    }
}

public enum DeadLetterError: Error, Sendable, CustomStringConvertible {
    case invalidID(String)
    case notFound(String)
    /// Some of a multi-entry dead letter's entries are missing; requeueing it would lose fields.
    case incomplete(String, found: Int, of: Int)
    /// The channel's seq counter is at 2^53-1.
    case seqExhausted(String)
    /// Fifty attempts all found a watched key changed (the channel or the dead-letter stream is very busy).
    case contended(String)

    public var description: String {
        switch self {
        case .invalidID(let id): return "'\(id)' is not a stream id (ms-seq)"
        case .notFound(let id): return "no dead letter with id \(id)"
        case .incomplete(let id, let found, let parts): return "dead letter \(id) has \(found) of its \(parts) entries; not requeued"
        case .seqExhausted(let channel): return "channel \(channel)'s seq counter is at 2^53-1; not requeued"
        case .contended(let id): return "dead letter \(id): the channel kept changing during 50 attempts; not requeued"
        }
    }
}
