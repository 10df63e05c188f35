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
    public func list(reason: String? = nil, limit: Int? = nil) async throws -> [DeadLetter] {
        var out: [DeadLetter] = []
        var remaining = limit ?? Int.max
        // The limit counts matches, so pages are read until it is met rather than XRANGE … COUNT limit.
        var start = "-"
        while remaining > 0 {
            let reply = try await client.send("XRANGE", deadStream, start, "+", "COUNT", 500)
            let page = try StreamRangeReader.entries(reply)
            for entry in page where remaining > 0 {
                let letter = DeadLetter(id: entry.id ?? "", entryFields: entry.fields)
                if let reason, letter.reason != reason { continue }
                out.append(letter)
                remaining -= 1
            }
            guard page.count == 500, let last = page.last?.id else { break }
            start = "(" + last
        }
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
            for entry in page { counts.add(DeadLetter(id: entry.id ?? "", entryFields: entry.fields).reason) }
            remaining -= page.count
            guard page.count == n, let last = page.last?.id else { break }
            end = "(" + last
        }
        return counts
    }

    public func show(id: String) async throws -> DeadLetter? {
        guard StreamID(id) != nil else { throw DeadLetterError.invalidID(id) }
        let page = try StreamRangeReader.entries(try await client.send("XRANGE", deadStream, id, id))
        return page.first.map { DeadLetter(id: $0.id ?? id, entryFields: $0.fields) }
    }

    /// Moves one dead letter back onto the input stream. With `dryRun`, reports what would be appended.
    public func requeue(_ letter: DeadLetter, restampSeq: Bool, dryRun: Bool) async throws -> RequeueOutcome {
        let entry = RequeueEntry(deadLetter: letter, restampSeq: restampSeq, channelField: channelField)
        if dryRun {
            return .wouldRequeue(deadID: letter.id, fields: entry.fields, restamped: entry.seqIndex != nil)
        }
        let channel = letter.channel(field: channelField)
        let seqKey = entry.seqIndex != nil ? keys.seq(channel: channel ?? "") : stream
        let stateKey = entry.seqIndex != nil ? keys.state(channel: channel ?? "") : stream
        var arguments: [any RedisArgumentConvertible] = [
            letter.id, entry.seqIndex.map { $0 * 2 + 2 } ?? 0, String(Self.nowMilliseconds()),
            letter.originalID ?? "", letter.reason, entry.originalSeq.map(String.init) ?? "",
        ]
        for field in entry.fields { arguments += [field.name, field.value] }
        let reply = try await client.evaluate(
            DeadLetterScripts.requeue,
            keys: [stream, deadStream, requeueLog, seqKey, stateKey],
            arguments: arguments)
        guard let parts = reply.array, let status = parts.first?.string else {
            throw RedisError.unexpectedReply("requeue returned \(reply)")
        }
        switch status {
        case "requeued":
            let newID = parts.count > 1 ? parts[1].string ?? "" : ""
            let seq = parts.count > 2 ? parts[2].string.flatMap { Int64($0) } : nil
            return .requeued(deadID: letter.id, newID: newID, newSeq: seq)
        case "missing":
            return .missing(deadID: letter.id)
        default:
            throw RedisError.unexpectedReply("requeue returned status \(status)")
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

    public var text: String {
        switch self {
        case .requeued(let dead, let new, let seq):
            return "\(dead) → \(new)" + (seq.map { " (seq \($0))" } ?? "")
        case .wouldRequeue(let dead, _, let restamped):
            return "\(dead): would requeue" + (restamped ? " with a new seq" : "")
        case .missing(let dead):
            return "\(dead): no longer in the dead-letter stream, skipped"
        }
    }
}

public enum DeadLetterError: Error, Sendable, CustomStringConvertible {
    case invalidID(String)
    case notFound(String)

    public var description: String {
        switch self {
        case .invalidID(let id): return "'\(id)' is not a stream id (ms-seq)"
        case .notFound(let id): return "no dead letter with id \(id)"
        }
    }
}
