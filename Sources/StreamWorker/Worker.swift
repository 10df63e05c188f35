import DistributedLocking
import Foundation
import Logging
import RedisClient
import ServiceLifecycle
import Synchronization
import Tracing

/// The stream-consumer service: reads the group, dispatches per channel, reclaims stale entries,
/// dead-letters what cannot be processed, and drains on graceful shutdown.
public final class StreamWorker: Service, Sendable {
    public let configuration: WorkerConfiguration
    private let client: RedisClient
    private let handler: any MessageHandler
    private let logger: Logger
    private let keys: WorkerKeys
    private let dispatcher: ChannelDispatcher
    private let readers: [GroupReader]
    private let reclaimer: Reclaimer
    private let refresher: PendingRefresher
    /// Readiness for health probes, kept current by the reader and the sampler.
    public let health: WorkerHealth
    private let metrics = WorkerMetrics()
    private let sampler: GroupSampler
    /// Partition leases and membership; nil with one partition, where every worker reads the stream.
    private let coordinator: PartitionCoordinator?

    /// - Parameter tracer: Spans per message (with claim, handle and commit children); nil, the
    ///   default, makes none and costs nothing.
    public init(configuration: WorkerConfiguration, client: RedisClient, handler: (any MessageHandler)? = nil,
                tracer: (any Tracer)? = nil, logger: Logger) {
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
        let reclaimBound = configuration.claimIdle + configuration.claimIdle / 4
        if configuration.gapTimeout <= reclaimBound {
            // Allowed (tests and replays shorten it), but a message that goes the reclaimer's way
            // (a handler that kept failing, a crash) then arrives after its successors were applied.
            logger.warning("gap-timeout is not longer than a reclaim can take: messages redelivered by the reclaimer will be dead-lettered as skipped_seq",
                           metadata: ["gap-timeout-s": "\(configuration.gapTimeout.redisMilliseconds / 1000)",
                                      "claim-idle-s": "\(configuration.claimIdle.redisMilliseconds / 1000)"])
        }
        let deadLetterer = DeadLetterer(client: client, group: configuration.group, consumer: configuration.consumer, keys: keys, logger: logger)
        let processor = MessageProcessor(
            client: client, handler: handler,
            settings: .init(group: configuration.group, consumer: configuration.consumer, keys: keys,
                            lockTTL: configuration.lockTTL, policy: policy, channelField: configuration.channelField),
            claimer: ClaimBatcher(client: client, ttl: configuration.lockTTL), committer: CommitBatcher(client: client),
            deadLetterer: deadLetterer,
            logger: logger, tracer: tracer)
        self.dispatcher = ChannelDispatcher(
            // Deep enough that a backlog forms runs of a channel's messages, not only one each.
            concurrency: configuration.concurrency,
            maxQueued: max(configuration.batch * 8, configuration.concurrency * 4),
            runLimit: policy.runLimit
        ) { [duplicateLog] jobs, task in
            let result = await processor.process(jobs, in: task)
            for finish in result.finished {
                switch finish {
                case .applied: duplicateLog.applied()
                case .duplicate: duplicateLog.duplicate(channel: jobs[0].message.channel)
                case .leftPending, .skipped: break
                }
            }
            switch result.rest {
            case .none:
                return .done
            case .requeue:
                return .requeue(finished: result.finished.count)
            case .restart(let retries):
                return .restart(finished: result.finished.count, retries: retries)
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
        let intake = EntryIntake(
            client: client, settings: configuration, dispatcher: dispatcher,
            deadLetterer: deadLetterer,
            logger: logger)
        let readSet = coordinator?.readSet
        let reader = GroupReader(client: client, settings: configuration, dispatcher: dispatcher, intake: intake, health: health,
                                 readSet: readSet, logger: logger)
        // A cluster cannot read streams of different slots in one XREADGROUP: a reader per partition.
        self.readers = client.isCluster && readSet != nil
            ? configuration.inputStreams.map { stream in
                var only = reader
                only.onlyStream = stream
                return only
            }
            : [reader]
        self.reclaimer = Reclaimer(client: client, settings: configuration, dispatcher: dispatcher, intake: intake, readSet: readSet,
                                   metrics: metrics, logger: logger)
        self.refresher = PendingRefresher(client: client, settings: configuration, dispatcher: dispatcher)
    }

    /// Runs until cancelled or shut down gracefully. On graceful shutdown (SIGTERM) it stops reading,
    /// reclaiming and starting queued messages at once, lets the turns already running finish
    /// within `shutdownGrace` while their entries' idle time is still refreshed, then cancels the
    /// rest: their locks are released and their entries stay pending for another worker.
    public func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            // Until the last running turn is done, so no other worker reclaims what still runs here.
            group.addTask { await self.refresher.run() }
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
            for reader in self.readers { group.addTask { await reader.run() } }
            group.addTask { await self.reclaimer.run() }
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


}

extension StreamWorker: PartitionHost {
    func takeOver(streams: [String], countingDeliveries: Bool) async {
        await reclaimer.takeOver(streams: streams, countingDeliveries: countingDeliveries)
    }
    func dropQueued(streams: Set<String>) async { await dispatcher.dropQueued(streams: streams) }
    func cancelRunning(streams: Set<String>) async { await dispatcher.cancelRunning(streams: streams) }
    func forget(streams: Set<String>) async { await dispatcher.forget(streams: streams) }
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

