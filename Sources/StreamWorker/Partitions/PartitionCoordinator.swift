import DistributedLocking
import Logging
import RedisClient

/// Heartbeats into the group's membership, computes which partitions this worker should own, and
/// holds their leases while it reads them. Affinity only: every commit is still checked by the
/// channel's lock, fence and order, so a rebalance can delay messages but never break them.
actor PartitionCoordinator {
    private let client: RedisClient
    private let keys: WorkerKeys
    private let group: String
    private let consumer: String
    private let baseStreams: [String]
    /// Lease and membership TTL; heartbeats and lease renewals run every ttl/3.
    private let ttl: Duration
    /// The worker; attached when it starts running, detached at the end of shutdown.
    private var host: (any PartitionHost)?
    private let logger: Logger
    private let metrics = PartitionMetrics()
    private var ownership: PartitionOwnership<ContinuousClock.Instant>
    private var desired: Set<Int> = []
    private var leases: [Int: DistributedLock] = [:]
    private var acquiring: [Int: (task: Task<Void, Never>, since: ContinuousClock.Instant)] = [:]
    private var watchers: [Int: Task<Void, Never>] = [:]
    /// Partitions acquired after the previous owner's lease ran out (a crash or a stall): taking
    /// their pending entries over counts as a delivery, which max-deliveries judges.
    private var expiredBefore: Set<Int> = []
    nonisolated let readSet = ReadSet()

    init(client: RedisClient, keys: WorkerKeys, group: String, consumer: String, streams: [String], ttl: Duration,
         shedTimeout: Duration, logger: Logger) {
        self.client = client
        self.keys = keys
        self.group = group
        self.consumer = consumer
        self.baseStreams = streams
        self.ttl = ttl
        self.logger = logger
        // A member that flaps in and out must not drag partitions along, but a pool that starts
        // together should settle in about a second.
        self.ownership = PartitionOwnership(minHold: min(ttl / 3, .seconds(1)), shedTimeout: shedTimeout)
    }

    nonisolated func streams(of partition: Int) -> [String] { baseStreams.map { keys.stream($0, partition: partition) } }

    /// Partitions whose lease this worker holds.
    var held: Set<Int> { ownership.held }

    /// Heartbeats every ttl/3, and at once when membership changes; reconciles often; until cancelled.
    func run(host: any PartitionHost) async {
        self.host = host
        let interval = ttl / 3
        let changes = try? await client.subscriber.subscribe(keys.membersChanged(group: group))
        defer { changes?.cancel() }
        // Workers started together see each other before anyone claims: fewer partitions move twice.
        await heartbeat(leaving: false)
        let settle = ContinuousClock.now + min(interval, .milliseconds(500))
        while !Task.isCancelled, ContinuousClock.now < settle {
            if await changes?.next(timeout: .milliseconds(50)) != nil { await heartbeat(leaving: false) }
        }
        var nextHeartbeat = ContinuousClock.now
        var changed = false
        while !Task.isCancelled {
            if changed || ContinuousClock.now >= nextHeartbeat {
                await heartbeat(leaving: false)
                nextHeartbeat = .now + interval
            }
            await reconcile()
            // Often while partitions are being acquired or shed (a shed ends when its in-flight
            // messages are done); once settled, only heartbeats and membership changes matter.
            let untilHeartbeat = max(ContinuousClock.now.duration(to: nextHeartbeat), .milliseconds(1))
            let wait = ownership.isSettled(desired: desired) ? min(untilHeartbeat, .milliseconds(500)) : .milliseconds(50)
            if let changes {
                changed = await changes.next(timeout: wait) != nil
            } else {
                try? await Task.sleep(for: wait)
            }
        }
    }

    /// Stops reading every partition and leaves the membership, so the others start acquiring;
    /// the leases are kept until ``releaseAll()``, after the in-flight messages are done.
    func shutDown() async {
        let counts = await host?.inFlightByStream() ?? [:]
        let actions = ownership.shutDown(now: .now, inFlight: inFlight(counts))
        await perform(actions)
        await heartbeat(leaving: true)
    }

    /// Gives every lease up (the last step of shutdown), waking the workers waiting for them.
    func releaseAll() async {
        for task in acquiring.values { task.task.cancel() }
        acquiring = [:]
        for p in leases.keys.sorted() { await release(p) }
        metrics.owned.record(0)
        host = nil
    }

    // MARK: Membership

    private func heartbeat(leaving: Bool) async {
        do {
            let reply = try await client.evaluate(
                WorkerScripts.heartbeat, keys: [keys.members(group: group)],
                arguments: [consumer, ttl.redisMilliseconds, leaving ? "1" : "0", keys.membersChanged(group: group)])
            guard let members = reply.array?.compactMap(\.string) else {
                throw RedisError.unexpectedReply("heartbeat returned \(reply)")
            }
            metrics.members.record(members.count)
            guard !leaving else { return }
            let next = PartitionAssignment.partitions(of: consumer, partitions: keys.partitions, members: members)
            if next != desired {
                metrics.rebalances.increment()
                logger.info("Partition assignment changed", metadata: [
                    "members": "\(members.count)", "assigned": "\(next.sorted())",
                ])
            }
            desired = next
        } catch {
            // Keep the last assignment: the leases, not the membership, decide who reads what.
            logger.warning("Heartbeat failed", metadata: ["error": "\(error)"])
        }
    }

    // MARK: Reconciling

    private func reconcile() async {
        let counts = await host?.inFlightByStream() ?? [:]
        let actions = ownership.reconcile(desired: desired, now: .now, inFlight: inFlight(counts))
        await perform(actions)
    }

    private func inFlight(_ counts: [String: Int]) -> (Int) -> Int {
        { p in self.streams(of: p).reduce(0) { $0 + (counts[$1] ?? 0) } }
    }

    private func perform(_ actions: [PartitionOwnership<ContinuousClock.Instant>.Action]) async {
        for action in actions {
            switch action {
            case .acquire(let p):
                let lock = DistributedLock(
                    client: client, key: keys.partitionLease(p, group: group), ttl: ttl,
                    autoRenew: true, maxRenewals: 0, abortOnLoss: true, logger: logger)
                let task = Task {
                    // Woken by the previous owner's release; never takes a lease a live owner holds.
                    if await lock.acquireBlocking(pollInterval: .seconds(1)) { await self.acquired(p, lock) }
                }
                acquiring[p] = (task, .now)
            case .cancelAcquire(let p):
                acquiring.removeValue(forKey: p)?.task.cancel()
            case .startReading(let p):
                let streams = streams(of: p)
                await host?.takeOver(streams: streams, countingDeliveries: expiredBefore.remove(p) != nil)
                // Lost or shed while taking over: reading it now would pull entries no one here runs.
                guard ownership.reading.contains(p) else { continue }
                readSet.add(streams)
                let epoch = await leases[p]?.fence ?? 0
                logger.info("Reading partition", metadata: ["partition": "\(p)", "epoch": "\(epoch)"])
            case .stopReading(let p):
                let streams = streams(of: p)
                readSet.remove(streams)
                if await !readSet.waitUntilUnread(streams, timeout: .seconds(5)) {
                    logger.warning("A read of a shed partition did not end in time", metadata: ["partition": "\(p)"])
                }
                await host?.dropQueued(streams: Set(streams))
                logger.info("Stopped reading partition", metadata: ["partition": "\(p)"])
            case .abandonInFlight(let p):
                logger.warning("Shedding a partition took too long; abandoning its in-flight messages",
                               metadata: ["partition": "\(p)"])
                await host?.cancelRunning(streams: Set(streams(of: p)))
            case .release(let p):
                await release(p)
            }
        }
        metrics.owned.record(leases.count)
    }

    private func acquired(_ p: Int, _ lock: DistributedLock) async {
        let since = acquiring.removeValue(forKey: p)?.since
        let actions = ownership.acquired(p, now: .now)
        guard actions.contains(.startReading(p)) else {
            // No longer wanted (the wait was cancelled meanwhile, or shutdown began). Given back
            // without the shed mark: what is pending may be a crashed owner's, and its next
            // take-over must still count.
            await lock.release()
            return
        }
        leases[p] = lock
        let epoch = await lock.fence ?? 0
        let owners = keys.partitionOwners(group: group)
        let record = try? await client.pipeline([
            RedisCommand("HGET", owners, String(p)),
            RedisCommand("HSET", owners, String(p), PartitionOwners.value(consumer: consumer, epoch: epoch)),
        ])
        // A record that cannot be read counts as a crash: a delivery too many is the safe side.
        let previous = try? record?.first?.get().string
        // Released meanwhile (shutdown began during those round trips).
        guard leases[p] === lock else { return }
        if !PartitionOwners.followsShed(previous, epoch: epoch) { expiredBefore.insert(p) }
        watchers[p] = Task {
            if await lock.waitForLoss() != nil { await self.leaseLost(p, lock) }
        }
        await perform(actions)
        if let since {
            let (seconds, attoseconds) = since.duration(to: .now).components
            metrics.handover.recordNanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
        }
    }

    private func leaseLost(_ p: Int, _ lock: DistributedLock) async {
        guard leases[p] === lock else { return }
        leases[p] = nil
        watchers[p] = nil
        expiredBefore.remove(p)
        metrics.leaseLosses.increment()
        let cause = await lock.lastLoss.map { "\($0)" } ?? "unknown"
        logger.warning("Partition lease lost; stopped reading it", metadata: ["partition": "\(p)", "cause": "\(cause)"])
        await perform(ownership.lost(p))
        await lock.release()
    }

    private func release(_ p: Int) async {
        watchers.removeValue(forKey: p)?.cancel()
        // Not yet taken over after a crash: what is pending is still the crashed owner's.
        let crashedBefore = expiredBefore.remove(p) != nil
        guard let lock = leases.removeValue(forKey: p) else { return }
        // A message that ignored its cancellation may still run: stop refreshing its entry, which
        // would otherwise keep claiming it back from the next owner.
        await host?.forget(streams: Set(streams(of: p)))
        await giveBack(p, lock, markingShed: !crashedBefore)
        logger.info("Released partition", metadata: ["partition": "\(p)"])
    }

    /// Releases a lease this worker gives up, first recording (when `markingShed`) that it did, so
    /// that the next owner does not count taking over the entries left pending as a delivery.
    private func giveBack(_ p: Int, _ lock: DistributedLock, markingShed: Bool) async {
        // Only while the lease is ours: a lost one may be someone else's record by now.
        if markingShed, await lock.isHeld, let epoch = await lock.fence {
            _ = try? await client.send(
                "HSET", keys.partitionOwners(group: group), String(p), PartitionOwners.shedValue(consumer: consumer, epoch: epoch))
        }
        await lock.release()
    }
}
