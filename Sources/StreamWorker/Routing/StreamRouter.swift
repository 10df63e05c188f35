import DistributedLocking
import Logging
import Metrics
import RedisClient

/// Moves entries from one inbound stream into the partition streams, for producers that can only
/// write one stream. One router at a time (a lease); order within a channel is kept because one
/// router appends in source order; a crash re-routes from the recorded cursor, and the route script
/// skips the ids already routed, so nothing is lost or routed twice.
struct StreamRouter: Sendable {
    let client: RedisClient
    let keys: WorkerKeys
    let source: String
    /// The base stream whose partition streams receive the entries.
    let target: String
    let channelField: String
    let batch: Int
    let blockTime: Duration
    let ttl: Duration
    let logger: Logger
    let routed = Counter(label: "sg_routed_total")

    /// Waits for the router lease and routes while it is held, until cancelled.
    func run() async {
        let lockKey = keys.routerLock(source: source)
        while !Task.isCancelled {
            let lock = DistributedLock(client: client, key: lockKey, ttl: ttl, autoRenew: true, maxRenewals: 0,
                                       abortOnLoss: true, logger: logger)
            guard await acquire(lock) else { return }
            logger.info("Routing", metadata: ["from": "\(source)", "to": "\(target)", "partitions": "\(keys.partitions)"])
            do {
                try await lock.runWhileHeld { try await self.route(token: lock.token) }
            } catch {
                if !Task.isCancelled { logger.warning("Routing stopped; waiting for the lease again", metadata: ["error": "\(error)"]) }
            }
            await lock.release()
        }
    }

    /// Waits for the lease in slices, so a shutdown is noticed while another worker routes.
    private func acquire(_ lock: DistributedLock) async -> Bool {
        while !Task.isCancelled {
            if await lock.acquireBlocking(pollInterval: .seconds(1), timeout: .milliseconds(500)) { return true }
        }
        return false
    }

    private func route(token: String) async throws {
        var cursor = try await client.send("GET", keys.routerCursor(source: source)).string ?? "0-0"
        try await client.withDedicatedConnection { connection in
            while !Task.isCancelled {
                var read = RedisCommand("XREAD", "COUNT", batch, "BLOCK", Int(blockTime.redisMilliseconds), "STREAMS", source, cursor)
                read.blockTime = blockTime
                let reply = try await connection.send(read)
                let entries = try StreamReplies.read(reply, stream: source)
                guard let last = entries.last else { continue }
                try await append(entries)
                let recorded = try await client.evaluate(
                    WorkerScripts.routerCursor, keys: [keys.routerLock(source: source), keys.routerCursor(source: source)],
                    arguments: [token, last.id])
                // A lease that went meanwhile: the next router starts from the last recorded cursor.
                guard recorded.int == 1 else { throw LockError.leaseLost(key: keys.routerLock(source: source), cause: .stolen) }
                cursor = last.id
                routed.increment(by: entries.count)
            }
        }
    }

    /// One route script call per partition touched by the batch, in source order within each.
    private func append(_ entries: [(id: String, fields: [StreamField])]) async throws {
        let channelName = Array(channelField.utf8), seqName = Array("seq".utf8)
        var byPartition: [Int: (keys: [String], arguments: [any RedisArgumentConvertible], count: Int)] = [:]
        for entry in entries {
            let channel = entry.fields.first { $0.name == channelName }.flatMap { String(validating: $0.value, as: UTF8.self) }
            let partition = channel.map { keys.partition(of: $0) } ?? 0
            let stream = keys.stream(target, partition: partition)
            var group = byPartition[partition] ?? ([stream], [], 0)
            let stamp = channel != nil && !entry.fields.contains { $0.name == seqName }
            group.keys.append(stamp ? keys.seq(channel: channel!) : stream)
            group.arguments += [entry.id, stamp ? "1" : "0", entry.fields.count]
            for field in entry.fields { group.arguments += [field.name, field.value] }
            group.count += 1
            byPartition[partition] = group
        }
        for (_, group) in byPartition.sorted(by: { $0.key < $1.key }) {
            let reply = try await client.evaluate(WorkerScripts.route, keys: group.keys, arguments: [group.count] + group.arguments)
            if let counts = reply.array?.compactMap(\.int), counts.count == 3, counts[1] + counts[2] > 0 {
                logger.info("Routed a batch again after a restart", metadata: [
                    "skipped_already_routed": "\(counts[1])", "appended_with_new_id": "\(counts[2])",
                ])
            }
        }
    }
}
