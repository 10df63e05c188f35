import DistributedLocking
import RedisClient
import StreamWorker

/// Reads what an on-call engineer wants to see about a group or a channel. Reads only.
public struct Inspector: Sendable {
    public let client: RedisClient
    public let keys: WorkerKeys

    public init(client: RedisClient, keys: WorkerKeys = WorkerKeys()) {
        self.client = client
        self.keys = keys
    }

    /// The group over the input stream `stream`; with partitions, over every partition stream of
    /// it, summed, with one row per partition naming its last recorded owner.
    public func group(stream: String, group: String, reasonSample: Int = 10_000, topReasons: Int = 5) async throws -> GroupReport {
        let owners = keys.isPartitioned ? try await partitionOwners(group: group) : [:]
        var parts: [StreamPart] = []
        for partitionStream in keys.streams(stream) {
            parts.append(try await part(stream: partitionStream, group: group, reasonSample: reasonSample))
        }
        var reasons = ReasonCounts()
        var consumers: [String: ConsumerInfo] = [:]
        for part in parts {
            reasons.merge(part.reasons)
            for c in part.consumers {
                var merged = consumers[c.name] ?? ConsumerInfo(name: c.name, pending: 0, idleMilliseconds: c.idleMilliseconds)
                merged.pending += c.pending
                merged.idleMilliseconds = min(merged.idleMilliseconds, c.idleMilliseconds)
                consumers[c.name] = merged
            }
        }
        let lags = parts.map(\.lag)
        var report = GroupReport(
            stream: stream, group: group, length: parts.reduce(0) { $0 + $1.length },
            lastDeliveredID: keys.isPartitioned ? "per partition" : parts[0].lastDelivered,
            pending: parts.reduce(0) { $0 + $1.pending }, lag: lags.contains(nil) ? nil : lags.reduce(0) { $0 + $1! },
            consumers: consumers.values.sorted { $0.name < $1.name }, locks: try await heldLocks(),
            deadLetters: parts.reduce(0) { $0 + $1.deadLetters }, topReasons: reasons.top(topReasons), reasonSample: reasons.total,
            requeued: parts.reduce(0) { $0 + $1.requeued })
        if keys.isPartitioned {
            report.partitions = parts.enumerated().map { p, part in
                PartitionRow(partition: p, stream: part.stream, owner: owners[p], pending: part.pending, lag: part.lag,
                             lastDeliveredID: part.lastDelivered)
            }
        }
        return report
    }

    /// What one stream (a partition, or the single input stream) holds for the group.
    private struct StreamPart {
        var stream: String, length: Int64, lastDelivered: String, pending: Int64, lag: Int64?
        var consumers: [ConsumerInfo], deadLetters: Int, reasons: ReasonCounts, requeued: Int
    }

    private func part(stream: String, group: String, reasonSample: Int) async throws -> StreamPart {
        let length = try await client.send("XLEN", stream).int ?? 0
        let groups: [RESPValue]
        do {
            groups = try await client.send("XINFO", "GROUPS", stream).array ?? []
        } catch let error as RedisError where error.serverCode == "ERR" {
            throw InspectError.noStream(stream)
        }
        guard let info = groups.map(InfoReply.init).first(where: { $0["name"]?.string == group }) else {
            throw InspectError.noGroup(stream: stream, group: group)
        }
        let lastDelivered = info["last-delivered-id"]?.string ?? "0-0"
        var lag = info["lag"]?.int
        if lag == nil {
            // Redis cannot always derive lag (after deletions); count what lies past the group.
            lag = Int64(try await StreamRangeReader(client: client, stream: stream, pageSize: 1000)
                .count(EntryRange(start: "(" + lastDelivered, end: "+", limit: nil)))
        }
        let consumers = (try await client.send("XINFO", "CONSUMERS", stream, group).array ?? []).map(InfoReply.init).map {
            ConsumerInfo(name: $0["name"]?.string ?? "?", pending: $0["pending"]?.int ?? 0, idleMilliseconds: $0["idle"]?.int ?? 0)
        }
        let dlq = DeadLetterQueue(client: client, stream: stream, keys: keys)
        return StreamPart(
            stream: stream, length: length, lastDelivered: lastDelivered, pending: info["pending"]?.int ?? 0, lag: lag,
            consumers: consumers, deadLetters: try await dlq.count(), reasons: try await dlq.reasons(sample: reasonSample),
            requeued: Int(try await client.send("XLEN", dlq.requeueLog).int ?? 0))
    }

    /// Partition number → the consumer that acquired it last.
    private func partitionOwners(group: String) async throws -> [Int: String] {
        PartitionOwners.consumers(try await client.send("HGETALL", keys.partitionOwners(group: group)))
    }

    /// Every channel lock held right now (SCAN, so it never blocks Redis), ordered by channel.
    public func heldLocks() async throws -> [HeldLock] {
        let pattern = keys.pattern("lock")
        let lockKeys = try await client.scanKeys(matching: pattern)
        var locks: [HeldLock] = []
        let unique = lockKeys.sorted()
        for chunk in stride(from: 0, to: unique.count, by: 200).map({ Array(unique[$0..<min($0 + 200, unique.count)]) }) {
            let channels = chunk.map { keys.channel(inKey: $0, kind: "lock") ?? $0 }
            let lock = try await read(lockKeys: chunk, channels: channels)
            locks += lock.compactMap { $0 }
        }
        return locks
    }

    public func channel(_ channel: String, historyTail: Int = 10) async throws -> ChannelReport {
        let results = try await client.pipeline([
            RedisCommand("HGETALL", keys.state(channel: channel)),
            RedisCommand("GET", keys.fence(channel: channel)),
            RedisCommand("GET", keys.seq(channel: channel)),
            RedisCommand("SMEMBERS", keys.deadSeqs(channel: channel)),
            RedisCommand("LLEN", keys.history(channel: channel)),
            RedisCommand("LRANGE", keys.history(channel: channel), -max(1, historyTail), -1),
        ])
        let replies = try results.map { try $0.get() }
        var state: [(String, String)] = []
        if let flat = replies[0].array {
            var i = 0
            while i + 1 < flat.count {
                state.append((flat[i].string ?? "", flat[i + 1].string ?? ""))
                i += 2
            }
        }
        let lock = try await read(lockKeys: [keys.lock(channel: channel)], channels: [channel]).first ?? nil
        return ChannelReport(
            channel: channel, state: state, fenceCounter: replies[1].int, lock: lock, producedSeq: replies[2].int,
            deadSeqs: (replies[3].array ?? []).compactMap(\.int).sorted(),
            historyLength: replies[4].int ?? 0,
            history: historyTail > 0 ? (replies[5].array ?? []).compactMap(\.string) : [])
    }

    /// GET, PTTL, fence and committed fence of each lock in one round trip; nil for a lock that
    /// was released meanwhile.
    private func read(lockKeys: [String], channels: [String]) async throws -> [HeldLock?] {
        var commands: [RedisCommand] = []
        for (key, channel) in zip(lockKeys, channels) {
            commands += [
                RedisCommand("GET", key), RedisCommand("PTTL", key),
                RedisCommand("GET", LockKeys.fenceKey(forLock: key)),
                RedisCommand("HGET", keys.state(channel: channel), "fence"),
            ]
        }
        let replies = try await client.pipeline(commands)
        return try zip(lockKeys, channels).enumerated().map { i, pair in
            let base = i * 4
            let token = try replies[base].get()
            guard !token.isNull, let text = token.string else { return nil }
            let pttl = try replies[base + 1].get().int ?? -2
            if pttl == -2 { return nil }
            return HeldLock(channel: pair.1, key: pair.0, token: text, ttlMilliseconds: pttl >= 0 ? pttl : nil,
                            fence: try replies[base + 2].get().int, committedFence: try replies[base + 3].get().int)
        }
    }
}

/// Kept as a name for callers; the same error as ``StreamGroupError``.
public typealias InspectError = StreamGroupError
