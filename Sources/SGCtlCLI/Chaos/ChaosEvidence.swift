import Chaos
import RedisClient
import StreamWorker

/// Reads back what a chaos run left in Redis: the produced seqs, every channel's history and the audit trail.
struct ChaosEvidence {
    let client: RedisClient
    let keys: WorkerKeys
    let channels: [String]
    let stream: String
    let group: String

    /// The highest seq stamped per channel: the producer script's counters.
    func produced() async throws -> [String: Int64] {
        let replies = try await client.pipeline(channels.map { RedisCommand("GET", keys.seq(channel: $0)) })
        var out: [String: Int64] = [:]
        for (channel, reply) in zip(channels, replies) {
            out[channel] = (try reply.get()).string.flatMap { Int64($0) } ?? 0
        }
        return out
    }

    /// How many messages the commits applied (the state hashes' counts).
    func appliedCount() async throws -> Int64 {
        let replies = try await client.pipeline(channels.map { RedisCommand("HGET", keys.state(channel: $0), "count") })
        var total: Int64 = 0
        for reply in replies {
            let value = try reply.get()
            total += value.int ?? value.string.flatMap { Int64($0) } ?? 0
        }
        return total
    }

    /// Entries delivered to the group and not yet acknowledged.
    func pendingCount() async throws -> Int64 {
        var total: Int64 = 0
        for partitionStream in keys.streams(stream) {
            total += try await client.send("XPENDING", partitionStream, group).array?.first?.int ?? 0
        }
        return total
    }

    func histories() async throws -> [String: [HistoryEntry]] {
        var out: [String: [HistoryEntry]] = [:]
        for channel in channels {
            let entries = try await client.send("LRANGE", keys.history(channel: channel), 0, -1).array ?? []
            out[channel] = HistoryEntry.decode(entries.compactMap(\.bytes))
        }
        return out
    }

    /// The whole audit stream in order, read in pages.
    func audit(stream audit: String) async throws -> [AuditEvent] {
        var events: [AuditEvent] = []
        var start = "-"
        while true {
            let page = try await client.send("XRANGE", audit, start, "+", "COUNT", 5000).array ?? []
            for entry in page {
                let fields = try (entry.array?.last ?? .array([])).stringHash(from: "XRANGE \(audit)")
                if let event = AuditEvent(fields: fields) { events.append(event) }
            }
            guard page.count == 5000, let last = page.last?.array?.first?.string else { break }
            start = "(" + last
        }
        return events
    }

    /// Removes every key of the run (`<prefix>:*`).
    func removeKeys() async throws {
        // One UNLINK a key: on a cluster the keys live in many slots.
        let found = try await client.scanKeys(matching: keys.prefix + ":*")
        for chunk in stride(from: 0, to: found.count, by: 500).map({ found[$0..<min($0 + 500, found.count)] }) {
            for result in try await client.pipeline(chunk.map { RedisCommand("UNLINK", $0) }) { _ = try result.get() }
        }
    }
}
