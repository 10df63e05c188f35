import DistributedLocking
import Foundation
import Logging
import RedisClient
import ServiceLifecycle
import Synchronization

/// The stream-consumer service: reads the group, dispatches per channel, reclaims stale entries,
/// dead-letters what cannot be processed, and drains on graceful shutdown.
public final class StreamWorker: Service, Sendable {
    public let configuration: WorkerConfiguration
    private let client: RedisClient
    private let handler: any MessageHandler
    private let logger: Logger
    private let keys: WorkerKeys
    private let dispatcher: ChannelDispatcher
    private let deadLetterer: DeadLetterer
    /// Readiness for health probes, kept current by the reader and the sampler.
    public let health: WorkerHealth
    private let metrics = WorkerMetrics()
    private let sampler: GroupSampler
    /// Partition leases and membership; nil with one partition, where every worker reads the stream.
    private let coordinator: PartitionCoordinator?

    public init(configuration: WorkerConfiguration, client: RedisClient, handler: (any MessageHandler)? = nil, logger: Logger) {
        self.configuration = configuration
        self.client = client
        var logger = logger
        logger[metadataKey: "consumer"] = .string(configuration.consumer)
        self.logger = logger
        self.keys = configuration.keys
        let handler = handler ?? HistoryHandler(historyMax: configuration.historyMax, work: configuration.workTime)
        self.handler = handler
        let duplicateLog = DuplicateLog(threshold: configuration.batch, logger: logger)
        let policy = ProcessingPolicy(gapTimeout: configuration.gapTimeout)
        let processor = MessageProcessor(
            client: client, handler: handler,
            settings: .init(group: configuration.group, consumer: configuration.consumer, keys: keys,
                            lockTTL: configuration.lockTTL, policy: policy),
            logger: logger)
        self.dispatcher = ChannelDispatcher(
            // Deep enough that a backlog forms runs of a channel's messages, not only one each.
            concurrency: configuration.concurrency,
            maxQueued: max(configuration.batch * 8, configuration.concurrency * 4),
            runLimit: policy.runLimit
        ) { [duplicateLog] jobs in
            let result = await processor.process(jobs)
            for finish in result.finished {
                switch finish {
                case .applied: duplicateLog.applied()
                case .duplicate: duplicateLog.duplicate(channel: jobs[0].message.channel)
                case .leftPending: break
                }
            }
            switch result.rest {
            case .none:
                return .done
            case .requeue:
                return .requeue(finished: result.finished.count)
            case .notReady(let advance):
                let retries = jobs[result.finished.count].retries
                // Woken by the channel's next release; without one, back off.
                guard let advance else {
                    return .retry(finished: result.finished.count, after: policy.parkPause(retries: retries, woken: false))
                }
                let wake: @Sendable (Duration) async -> Void = { timeout in await advance.wait(timeout: timeout) }
                return .retry(finished: result.finished.count, after: policy.parkPause(retries: retries, woken: true), wake: wake)
            }
        }
        self.deadLetterer = DeadLetterer(client: client, group: configuration.group, consumer: configuration.consumer, keys: keys, logger: logger)
        self.health = WorkerHealth(group: configuration.group)
        self.sampler = GroupSampler(
            client: client, streams: configuration.inputStreams, group: configuration.group, interval: .seconds(2),
            dispatcher: dispatcher, metrics: metrics, groupMetrics: GroupMetrics(), health: health, logger: logger)
        self.coordinator = keys.isPartitioned
            ? PartitionCoordinator(
                client: client, keys: keys, group: configuration.group, consumer: configuration.consumer,
                streams: configuration.streams, ttl: configuration.lockTTL,
                shedTimeout: min(configuration.lockTTL, configuration.shutdownGrace), logger: logger)
            : nil
    }

    /// Runs until cancelled or shut down gracefully. On graceful shutdown (SIGTERM) it stops reading,
    /// reclaiming and starting queued messages at once, lets the turns already running finish
    /// within `shutdownGrace` while their entries' idle time is still refreshed, then cancels the
    /// rest: their locks are released and their entries stay pending for another worker.
    public func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            // Until the last running turn is done, so no other worker reclaims what still runs here.
            group.addTask { await self.refreshLoop() }
            await withTaskCancellationOrGracefulShutdownHandler {
                await cancelWhenGracefulShutdown { await self.consume() }
            } onCancelOrGracefulShutdown: {
                self.health.update { $0.stopping() }
                Task { await self.dispatcher.stopStarting() }
            }
            // Read no partition more and leave the membership, so the others start waiting for the leases.
            await self.coordinator?.shutDown()
            await self.finishRunningTurns()
            // The running turns are done: hand the partitions over.
            await self.coordinator?.releaseAll()
            group.cancelAll()
        }
        logger.info("Worker stopped")
    }

    /// Reads, reclaims and samples until cancelled (graceful shutdown cancels it).
    private func consume() async {
        // A Redis that is down at start makes the worker unready, not a crash loop.
        guard await ensureGroupsRetrying() else { return }
        health.update { $0.groupsEnsured() }
        logger.info("Worker started", metadata: ["streams": "\(configuration.streams)", "group": "\(configuration.group)"])
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.readLoop() }
            group.addTask { await self.reclaimLoop() }
            group.addTask { await self.sampler.run() }
            if let coordinator = self.coordinator {
                group.addTask { await coordinator.run(host: self) }
            }
            if let source = self.configuration.routeFrom {
                let router = StreamRouter(
                    client: self.client, keys: self.keys, source: source, target: self.configuration.streams[0],
                    channelField: self.configuration.channelField, batch: self.configuration.batch,
                    blockTime: self.configuration.blockTime, ttl: self.configuration.lockTTL, logger: self.logger)
                group.addTask { await router.run() }
            }
            await group.waitForAll()
        }
    }

    /// Waits up to shutdown-grace for the running turns, then cancels them (without a grace at all
    /// when the worker itself was cancelled) and waits a bounded time for them to let go.
    private func finishRunningTurns() async {
        await dispatcher.stopStarting()
        let grace = Task.isCancelled ? .zero : configuration.shutdownGrace
        if await dispatcher.waitUntilDrained(timeout: grace) { return }
        let running = await dispatcher.inFlight
        logger.warning("Shutdown grace passed; cancelling running messages (they stay pending)", metadata: ["in_flight": "\(running)"])
        await dispatcher.cancelAll()
        if await !dispatcher.waitUntilDrained(timeout: .seconds(5)) {
            let left = await dispatcher.inFlight
            logger.error("Running messages did not stop within 5 s of being cancelled; exiting anyway", metadata: ["in_flight": "\(left)"])
        }
    }

    /// Creates the groups, retrying with backoff (up to 5 s) until it works; false when stopped first.
    private func ensureGroupsRetrying() async -> Bool {
        var backoff = Duration.milliseconds(100)
        while !Task.isCancelled {
            do {
                try await ensureGroups()
                return true
            } catch {
                health.update { $0.startFailed(error: error) }
                logger.warning("Cannot create the consumer group yet; retrying", metadata: ["error": "\(error)", "retry_in": "\(backoff)"])
                do { try await Task.sleep(for: backoff) } catch { return false }
                backoff = min(backoff * 2, .seconds(5))
            }
        }
        return false
    }

    private func ensureGroups() async throws {
        for stream in configuration.inputStreams {
            do {
                try await client.send("XGROUP", "CREATE", stream, configuration.group, "0", "MKSTREAM")
            } catch let error as RedisError where error.serverCode == "BUSYGROUP" {
                // Another worker created it first.
            }
        }
    }

    // MARK: Reading

    private func readLoop() async {
        // Own pending entries first (after a restart), from the start of the PEL, then new ones.
        // Partitioned, a partition's pending entries are taken over when its lease is acquired instead.
        var pendingCursor: [String: String] = coordinator == nil
            ? Dictionary(uniqueKeysWithValues: configuration.streams.map { ($0, "0") }) : [:]
        var backoff = Duration.milliseconds(100)
        let readSet = coordinator?.readSet
        do {
            try await client.withDedicatedConnection { connection in
                while !Task.isCancelled {
                    await self.dispatcher.waitForCapacity()
                    if Task.isCancelled { return }
                    var version = 0
                    var current = self.configuration.streams
                    if let readSet {
                        (version, current) = readSet.snapshot
                        if current.isEmpty {
                            // Owning nothing is normal in a pool larger than the partition count.
                            try? await Task.sleep(for: .milliseconds(50))
                            continue
                        }
                        pendingCursor = pendingCursor.filter { current.contains($0.key) }
                    }
                    let readingPending = !pendingCursor.isEmpty
                    let streams = readingPending ? Array(pendingCursor.keys).sorted() : current
                    var command = RedisCommand("XREADGROUP", "GROUP", self.configuration.group, self.configuration.consumer,
                                               "COUNT", self.configuration.batch)
                    if !readingPending {
                        let block = self.configuration.blockTime
                        command.append("BLOCK")
                        command.append(Int(block.redisMilliseconds))
                        command.blockTime = block
                    }
                    command.append("STREAMS")
                    for stream in streams { command.append(stream) }
                    for stream in streams { command.append(readingPending ? pendingCursor[stream]! : ">") }
                    var entries: [(stream: String, entry: StreamReplyEntry)]
                    do {
                        let read = command, readVersion = version
                        // Cancelled at shutdown, or when the owned partitions change: the blocked read is
                        // aborted (its connection dropped).
                        let reply = try await Self.withInterrupt(when: { readSet.map { $0.version != readVersion } ?? false }) {
                            try await connection.send(read)
                        }
                        entries = try StreamReplies.readGroup(reply)
                        backoff = .milliseconds(100)
                        self.health.update { $0.readSucceeded(streams: streams) }
                    } catch {
                        if Task.isCancelled { return }
                        if let readSet, readSet.version != version {
                            // What the aborted read delivered is pending here, so the partitions still
                            // read start again from their pending entries.
                            for stream in readSet.snapshot.streams { pendingCursor[stream] = "0" }
                            continue
                        }
                        self.health.update { $0.readFailed(streams: streams, error: error) }
                        self.logger.warning("Read failed; retrying", metadata: ["error": "\(error)", "retry_in_ms": "\(backoff.redisMilliseconds)"])
                        try? await Task.sleep(for: backoff)
                        backoff = min(backoff * 2, .seconds(5))
                        continue
                    }
                    if let readSet {
                        // A partition whose lease went meanwhile is the next owner's: leave its entries pending.
                        entries.removeAll { !readSet.contains($0.stream) }
                    }
                    if readingPending {
                        var seen = Set<String>()
                        for entry in entries {
                            seen.insert(entry.stream)
                            pendingCursor[entry.stream] = entry.entry.id
                        }
                        for stream in streams where !seen.contains(stream) { pendingCursor[stream] = nil }
                        let counts = await self.deliveryCounts(entries.map { ($0.stream, $0.entry.id) })
                        // Stopped mid-batch: the rest stays pending, for this consumer's restart or a reclaimer.
                        for entry in entries where !Task.isCancelled {
                            await self.accept(stream: entry.stream, id: entry.entry.id, fields: entry.entry.fields,
                                              deliveries: counts["\(entry.stream)/\(entry.entry.id)"] ?? 1)
                        }
                    } else {
                        for entry in entries where !Task.isCancelled {
                            await self.accept(stream: entry.stream, id: entry.entry.id, fields: entry.entry.fields, deliveries: 1)
                        }
                    }
                }
            }
        } catch {
            logger.error("Reader stopped", metadata: ["error": "\(error)"])
        }
    }

    /// Validates an entry and either dispatches it or dead-letters it.
    private func accept(stream: String, id: String, fields: [StreamField]?, deliveries: Int) async {
        guard let fields else {
            // Deleted from the stream while pending: nothing left to process.
            _ = try? await client.send("XACK", stream, configuration.group, id)
            return
        }
        let entry = StreamEntry(stream: stream, id: id, fields: fields)
        switch InboundMessage.parse(entry, channelField: configuration.channelField, maxEntryBytes: configuration.maxEntryBytes) {
        case .success(let message):
            if deliveries > configuration.maxDeliveries {
                await deadLetter(entry, reason: "max_deliveries", detail: "delivered \(deliveries) times", deliveries: deliveries,
                                 channel: message.channel, seq: message.seq)
            } else {
                await dispatcher.submit(message)
            }
        case .failure(let bad):
            await deadLetter(entry, reason: bad.reason, detail: bad.description, deliveries: deliveries, channel: nil, seq: nil)
        }
    }

    private func deadLetter(_ entry: StreamEntry, reason: String, detail: String, deliveries: Int, channel: String?, seq: Int64?) async {
        do {
            try await deadLetterer.deadLetter(stream: entry.stream, id: entry.id, fields: entry.fields, reason: reason,
                                              detail: detail, deliveries: deliveries, channel: channel, seq: seq)
        } catch {
            // Still pending: the reclaimer retries it later.
            logger.error("Dead-lettering failed", metadata: ["entry": "\(entry.id)", "error": "\(error)"])
        }
    }

    /// Delivery counts from XPENDING, one round trip for the whole batch.
    private func deliveryCounts(_ ids: [(String, String)]) async -> [String: Int] {
        guard !ids.isEmpty else { return [:] }
        let commands = ids.map { RedisCommand("XPENDING", $0.0, configuration.group, $0.1, $0.1, 1) }
        guard let results = try? await client.pipeline(commands) else { return [:] }
        var counts: [String: Int] = [:]
        for (i, result) in results.enumerated() {
            if case .success(let reply) = result, let row = reply.array?.first?.array, row.count == 4, let n = row[3].int {
                counts["\(ids[i].0)/\(ids[i].1)"] = Int(n)
            }
        }
        return counts
    }

    // MARK: Reclaiming

    /// Claims entries idle longer than claim-idle (a crashed or stuck worker's), so they are processed here.
    private func reclaimLoop() async {
        let interval = max(configuration.claimIdle / 4, .milliseconds(100))
        var cursors: [String: String] = [:]
        while !Task.isCancelled {
            do { try await Task.sleep(for: interval) } catch { return }
            for stream in coordinator?.readSet.snapshot.streams ?? configuration.streams {
                do {
                    let reply = try await client.send(
                        "XAUTOCLAIM", stream, configuration.group, configuration.consumer,
                        configuration.claimIdle.redisMilliseconds, cursors[stream] ?? "0-0", "COUNT", configuration.batch)
                    let claimed = try StreamReplies.autoClaim(reply)
                    cursors[stream] = claimed.cursor
                    if claimed.entries.isEmpty { continue }
                    metrics.reclaimed(claimed.entries.count)
                    logger.info("Reclaimed idle entries", metadata: ["stream": "\(stream)", "count": "\(claimed.entries.count)"])
                    let counts = await deliveryCounts(claimed.entries.map { (stream, $0.id) })
                    // No backpressure wait here: the queue may be full of later messages that wait for
                    // exactly these (a dead worker's), so holding them back would deadlock the channel.
                    for entry in claimed.entries where !Task.isCancelled {
                        if await dispatcher.contains(stream: stream, id: entry.id) { continue }
                        await accept(stream: stream, id: entry.id, fields: entry.fields, deliveries: counts["\(stream)/\(entry.id)"] ?? 1)
                    }
                } catch {
                    logger.warning("Reclaim failed", metadata: ["stream": "\(stream)", "error": "\(error)"])
                }
            }
        }
    }

    /// Keeps every entry this worker has accepted (queued or running) from looking idle, with
    /// XCLAIM … JUSTID to ourselves, which does not count as a delivery. Without it a long queue
    /// or a long turn would be reclaimed by another worker, or even dead-lettered. During shutdown
    /// only the running turns are left to refresh; it stops when they are done.
    private func refreshLoop() async {
        let interval = max(configuration.claimIdle / 4, .milliseconds(50))
        while !Task.isCancelled {
            do { try await Task.sleep(for: interval) } catch { return }
            for (stream, ids) in await dispatcher.inFlightEntries where !ids.isEmpty {
                let all = Array(ids)
                for start in stride(from: 0, to: all.count, by: 500) {
                    var command = RedisCommand("XCLAIM", stream, configuration.group, configuration.consumer, 0)
                    for id in all[start..<min(start + 500, all.count)] { command.append(id) }
                    command.append("JUSTID")
                    _ = try? await client.send(command)
                }
            }
        }
    }
}

extension StreamWorker {
    /// Runs `body`, cancelling it as soon as `interrupt` says so.
    static func withInterrupt<T: Sendable>(
        when interrupt: @escaping @Sendable () -> Bool, _ body: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                while !interrupt() { try await Task.sleep(for: .milliseconds(20)) }
                return nil
            }
            while let next = try await group.next() {
                group.cancelAll()
                if let value = next { return value }
                throw CancellationError()
            }
            throw CancellationError()
        }
    }
}

extension StreamWorker: PartitionHost {
    func takeOver(streams: [String]) async {
        await dispatcher.reopen(streams: Set(streams))
        for stream in streams {
            var cursor = "0-0"
            repeat {
                do {
                    // Idle 0: the previous owner has shed it or lost its lease; a late holder is
                    // still stopped by the channel's lock and fence.
                    let reply = try await client.send(
                        "XAUTOCLAIM", stream, configuration.group, configuration.consumer, 0, cursor, "COUNT", configuration.batch)
                    let claimed = try StreamReplies.autoClaim(reply)
                    cursor = claimed.cursor
                    if claimed.entries.isEmpty { continue }
                    metrics.reclaimed(claimed.entries.count)
                    logger.info("Took over a partition's pending entries", metadata: ["stream": "\(stream)", "count": "\(claimed.entries.count)"])
                    let counts = await deliveryCounts(claimed.entries.map { (stream, $0.id) })
                    for entry in claimed.entries where !(await dispatcher.contains(stream: stream, id: entry.id)) {
                        await accept(stream: stream, id: entry.id, fields: entry.fields, deliveries: counts["\(stream)/\(entry.id)"] ?? 1)
                    }
                } catch {
                    // What is left is found by the reclaimer after claim-idle.
                    logger.warning("Taking over a partition's pending entries failed", metadata: ["stream": "\(stream)", "error": "\(error)"])
                    break
                }
            } while cursor != "0-0" && !Task.isCancelled
        }
    }

    func dropQueued(streams: Set<String>) async { await dispatcher.dropQueued(streams: streams) }
    func cancelRunning(streams: Set<String>) async { await dispatcher.cancelRunning(streams: streams) }
    func inFlightByStream() async -> [String: Int] { await dispatcher.inFlightCounts }
}

/// Says at info level when the worker acknowledges message after message as duplicates without
/// applying any (``DuplicateStreak``): typically a replay into state that has already seen those seqs.
final class DuplicateLog: Sendable {
    private let streak: Mutex<DuplicateStreak>
    private let logger: Logger

    init(threshold: Int, logger: Logger) {
        streak = Mutex(DuplicateStreak(threshold: threshold))
        self.logger = logger
    }

    func applied() { streak.withLock { $0.applied() } }

    func duplicate(channel: String) {
        guard let report = streak.withLock({ $0.duplicate(channel: channel, now: .now) }) else { return }
        logger.info("Acknowledged messages as duplicates without applying any: their seqs are at or below their channels' last_seq (a replay into state that has already seen them? see docs/staging.md)",
                    metadata: ["duplicates": "\(report.duplicates)", "channels": "\(report.channels)"])
    }
}

