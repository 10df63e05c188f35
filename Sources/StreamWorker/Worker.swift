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
    private let stopping = StopFlag()
    /// Readiness for health probes, kept current by the reader and the sampler.
    public let health: WorkerHealth
    private let metrics = WorkerMetrics()
    private let sampler: GroupSampler

    public init(configuration: WorkerConfiguration, client: RedisClient, handler: (any MessageHandler)? = nil, logger: Logger) {
        self.configuration = configuration
        self.client = client
        var logger = logger
        logger[metadataKey: "consumer"] = .string(configuration.consumer)
        self.logger = logger
        self.keys = WorkerKeys(prefix: configuration.keyPrefix)
        let handler = handler ?? HistoryHandler(historyMax: configuration.historyMax, work: configuration.workTime)
        self.handler = handler
        let duplicateLog = DuplicateLog(threshold: configuration.batch, logger: logger)
        let processor = MessageProcessor(
            client: client, handler: handler,
            settings: .init(group: configuration.group, consumer: configuration.consumer, keys: keys,
                            lockTTL: configuration.lockTTL, gapTimeout: configuration.gapTimeout),
            logger: logger)
        self.dispatcher = ChannelDispatcher(
            concurrency: configuration.concurrency,
            maxQueued: max(configuration.batch * 2, configuration.concurrency * 4)
        ) { [duplicateLog] job in
            switch await processor.process(job.message, notReadySince: job.notReadySince) {
            case .notReady(_, let advance):
                // Woken by the channel's next release; without one, back off 5 ms, 10 ms, … up to 200 ms.
                guard let advance else { return .retry(after: .milliseconds(min(200, 5 << min(job.retries, 6)))) }
                let wake: @Sendable (Duration) async -> Void = { timeout in await advance.wait(timeout: timeout) }
                return .retry(after: .milliseconds(250), wake: wake)
            case .applied:
                duplicateLog.applied()
                return .done
            case .duplicate:
                duplicateLog.duplicate(channel: job.message.channel)
                return .done
            case .leftPending:
                return .done
            }
        }
        self.deadLetterer = DeadLetterer(client: client, group: configuration.group, consumer: configuration.consumer, keys: keys, logger: logger)
        self.health = WorkerHealth(group: configuration.group)
        self.sampler = GroupSampler(
            client: client, streams: configuration.streams, group: configuration.group, interval: .seconds(2),
            dispatcher: dispatcher, metrics: metrics, groupMetrics: GroupMetrics(), health: health, logger: logger)
    }

    public func run() async throws {
        await withGracefulShutdownHandler {
            // A Redis that is down at start makes the worker unready, not a crash loop.
            guard await self.ensureGroupsRetrying() else { return }
            self.health.update { $0.groupsEnsured() }
            self.logger.info("Worker started", metadata: ["streams": "\(self.configuration.streams)", "group": "\(self.configuration.group)"])
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await self.readLoop() }
                group.addTask { await self.reclaimLoop() }
                group.addTask { await self.refreshLoop() }
                group.addTask { await self.sampler.run(until: self.stopping) }
                await group.waitForAll()
            }
        } onGracefulShutdown: {
            self.health.update { $0.stopping() }
            self.stopping.set()
        }
        // Stopped reading: finish what is in flight within the grace period, then abandon the rest
        // (it stays pending and is redelivered).
        let drained = await waitForResultOrTimeout(configuration.shutdownGrace) { await self.dispatcher.waitUntilDrained() }
        if !drained {
            let inFlight = await dispatcher.inFlight
            logger.warning("Shutdown grace passed; abandoning in-flight messages", metadata: ["in_flight": "\(inFlight)"])
            await dispatcher.cancelAll()
            await dispatcher.waitUntilDrained()
        }
        logger.info("Worker stopped")
    }

    /// Creates the groups, retrying with backoff (up to 5 s) until it works; false when stopped first.
    private func ensureGroupsRetrying() async -> Bool {
        var backoff = Duration.milliseconds(100)
        while !stopping.isSet, !Task.isCancelled {
            do {
                try await ensureGroups()
                return true
            } catch {
                health.update { $0.startFailed(error: error) }
                logger.warning("Cannot create the consumer group yet; retrying", metadata: ["error": "\(error)", "retry_in": "\(backoff)"])
                do { try await sleepUnlessStopping(backoff) } catch { return false }
                backoff = min(backoff * 2, .seconds(5))
            }
        }
        return false
    }

    private func ensureGroups() async throws {
        for stream in configuration.streams {
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
        var pendingCursor: [String: String] = Dictionary(uniqueKeysWithValues: configuration.streams.map { ($0, "0") })
        var backoff = Duration.milliseconds(100)
        do {
            try await client.withDedicatedConnection { connection in
                while !self.stopping.isSet, !Task.isCancelled {
                    await self.dispatcher.waitForCapacity()
                    let readingPending = !pendingCursor.isEmpty
                    let streams = readingPending ? Array(pendingCursor.keys).sorted() : self.configuration.streams
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
                    let reply: RESPValue
                    do {
                        let read = command
                        reply = try await self.withStopInterrupt { try await connection.send(read) }
                        backoff = .milliseconds(100)
                        self.health.update { $0.readSucceeded(streams: streams) }
                    } catch {
                        if self.stopping.isSet || Task.isCancelled { return }
                        self.health.update { $0.readFailed(streams: streams, error: error) }
                        self.logger.warning("Read failed; retrying", metadata: ["error": "\(error)", "retry_in_ms": "\(backoff.redisMilliseconds)"])
                        try? await Task.sleep(for: backoff)
                        backoff = min(backoff * 2, .seconds(5))
                        continue
                    }
                    let entries = StreamReplies.readGroup(reply)
                    if readingPending {
                        var seen = Set<String>()
                        for entry in entries {
                            seen.insert(entry.stream)
                            pendingCursor[entry.stream] = entry.id
                        }
                        for stream in streams where !seen.contains(stream) { pendingCursor[stream] = nil }
                        let counts = await self.deliveryCounts(entries.map { ($0.stream, $0.id) })
                        for entry in entries {
                            await self.accept(stream: entry.stream, id: entry.id, fields: entry.fields,
                                              deliveries: counts["\(entry.stream)/\(entry.id)"] ?? 1)
                        }
                    } else {
                        for entry in entries {
                            await self.accept(stream: entry.stream, id: entry.id, fields: entry.fields, deliveries: 1)
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
        while !stopping.isSet, !Task.isCancelled {
            do { try await sleepUnlessStopping(interval) } catch { return }
            if stopping.isSet { return }
            for stream in configuration.streams {
                do {
                    let reply = try await client.send(
                        "XAUTOCLAIM", stream, configuration.group, configuration.consumer,
                        configuration.claimIdle.redisMilliseconds, cursors[stream] ?? "0-0", "COUNT", configuration.batch)
                    let claimed = StreamReplies.autoClaim(reply)
                    cursors[stream] = claimed.cursor
                    if claimed.entries.isEmpty { continue }
                    metrics.reclaimed(claimed.entries.count)
                    logger.info("Reclaimed idle entries", metadata: ["stream": "\(stream)", "count": "\(claimed.entries.count)"])
                    let counts = await deliveryCounts(claimed.entries.map { (stream, $0.0) })
                    // No backpressure wait here: the queue may be full of later messages that wait for
                    // exactly these (a dead worker's), so holding them back would deadlock the channel.
                    for (id, fields) in claimed.entries where !(await dispatcher.contains(stream: stream, id: id)) {
                        await accept(stream: stream, id: id, fields: fields, deliveries: counts["\(stream)/\(id)"] ?? 1)
                    }
                } catch {
                    logger.warning("Reclaim failed", metadata: ["stream": "\(stream)", "error": "\(error)"])
                }
            }
        }
    }

    /// Keeps every entry this worker has accepted (queued or running) from looking idle, with
    /// XCLAIM … JUSTID to ourselves, which does not count as a delivery. Without it a long queue
    /// or a long turn would be reclaimed by another worker, or even dead-lettered.
    private func refreshLoop() async {
        let interval = max(configuration.claimIdle / 4, .milliseconds(50))
        while !stopping.isSet, !Task.isCancelled {
            do { try await sleepUnlessStopping(interval) } catch { return }
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

    // MARK: Stopping

    private func sleepUnlessStopping(_ duration: Duration) async throws {
        let deadline = ContinuousClock.now + duration
        while ContinuousClock.now < deadline, !stopping.isSet {
            try await Task.sleep(for: min(.milliseconds(100), ContinuousClock.now.duration(to: deadline)))
        }
    }

    /// Runs a blocking read, cancelling it as soon as shutdown begins.
    private func withStopInterrupt<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                while !self.stopping.isSet { try await Task.sleep(for: .milliseconds(50)) }
                return nil
            }
            while let next = try await group.next() {
                if let value = next {
                    group.cancelAll()
                    return value
                }
                group.cancelAll()
                throw CancellationError()
            }
            throw CancellationError()
        }
    }
}

/// Waits for `operation` up to `timeout`; true if it finished.
func waitForResultOrTimeout(_ timeout: Duration, _ operation: @escaping @Sendable () async -> Void) async -> Bool {
    await withTaskGroup(of: Bool.self) { group in
        group.addTask { await operation(); return true }
        group.addTask { try? await Task.sleep(for: timeout); return false }
        let first = await group.next() ?? false
        group.cancelAll()
        return first
    }
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

final class StopFlag: Sendable {
    private let state = Mutex(false)
    func set() { state.withLock { $0 = true } }
    var isSet: Bool { state.withLock { $0 } }
}
