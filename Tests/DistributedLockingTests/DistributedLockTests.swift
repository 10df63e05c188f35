import DistributedLocking
import Foundation
import RedisClient
import TestSupport
import Testing

@Suite struct DistributedLockTests {
    @Test func eachInstanceHasAUUID4TokenAndConstructionTouchesNothing() async throws {
        let client = try TestRedis.client()
        defer { client.close() }
        let key = TestRedis.uniqueKey()
        let lock = DistributedLock(client: client, key: key)
        #expect(UUID(uuidString: lock.token) != nil)
        #expect(Array(lock.token)[14] == "4")
        #expect(DistributedLock(client: client, key: key).token != lock.token)
        #expect(try await client.send("EXISTS", key, lock.fenceKey) == .integer(0))
    }

    @Test func aSecondInstanceCannotAcquireAHeldKey() async throws {
        let client = try TestRedis.client()
        defer { client.close() }
        let key = TestRedis.uniqueKey()
        let a = DistributedLock(client: client, key: key, ttl: .seconds(30))
        let b = DistributedLock(client: client, key: key, ttl: .seconds(30))
        #expect(await a.acquire())
        #expect(try await client.send("GET", key).string == a.token)
        #expect(!(await b.acquire()))
        await a.release()
        #expect(await b.acquire())
        await b.release()
        #expect(try await client.send("EXISTS", key) == .integer(0))
    }

    @Test func reentrantAcquiresOnlyDeleteOnTheOutermostRelease() async throws {
        let client = try TestRedis.client()
        defer { client.close() }
        let key = TestRedis.uniqueKey()
        let lock = DistributedLock(client: client, key: key, ttl: .seconds(30))
        #expect(await lock.acquire())
        let fence = await lock.fence
        #expect(await lock.acquire())
        #expect(await lock.acquireBlocking(timeout: .seconds(1)))
        #expect(await lock.fence == fence)
        await lock.release()
        await lock.release()
        #expect(try await client.send("EXISTS", key) == .integer(1))
        #expect(await lock.keysReleasedCount == 0)
        await lock.release()
        #expect(try await client.send("EXISTS", key) == .integer(0))
        #expect(await lock.keysReleasedCount == 1)
        await lock.release()  // not held: a no-op
        #expect(await lock.keysReleasedCount == 1)
    }

    @Test func aHoldWhoseLeaseIsGoneIsNotReentered() async throws {
        let client = try TestRedis.client()
        defer { client.close() }
        let key = TestRedis.uniqueKey()
        // No renewals: the lease ends with its TTL while the hold is still open.
        let lock = DistributedLock(client: client, key: key, ttl: .milliseconds(300), autoRenew: false)
        #expect(await lock.acquire())
        try await waitUntil { await !lock.isHeld }
        let other = DistributedLock(client: client, key: key, ttl: .seconds(30))
        try await waitUntil { await other.acquire() }
        #expect(!(await lock.acquire()), "re-entering would claim what \(other.token) holds")
        #expect(!(await lock.acquireBlocking(timeout: .milliseconds(200))))
        await lock.release()
        #expect(try await client.send("GET", key).string == other.token, "the outer release leaves the new holder alone")
        await other.release()
    }

    @Test func releaseNeverDeletesAnotherHoldersKey() async throws {
        let client = try TestRedis.client()
        defer { client.close() }
        let key = TestRedis.uniqueKey()
        let lock = DistributedLock(client: client, key: key, ttl: .seconds(30))
        #expect(await lock.acquire())
        try await client.send("SET", key, "someone-else")
        await lock.release()
        #expect(try await client.send("GET", key).string == "someone-else")
        #expect(await lock.keysReleasedCount == 0)
    }

    @Test func everyFreshAcquireDrawsAHigherFence() async throws {
        let client = try TestRedis.client()
        defer { client.close() }
        let key = TestRedis.uniqueKey()
        var fences: [Int64] = []
        for _ in 0..<5 {
            let lock = DistributedLock(client: client, key: key, ttl: .seconds(30))
            #expect(await lock.acquire())
            fences.append(try #require(await lock.fence))
            await lock.release()
        }
        #expect(fences == fences.sorted() && Set(fences).count == 5)
        // The counter never expires.
        #expect(try await client.send("PTTL", LockKeys.fenceKey(forLock: key)) == .integer(-1))
    }

    @Test func subSecondLeasesExpireInRedis() async throws {
        let client = try TestRedis.client()
        defer { client.close() }
        let key = TestRedis.uniqueKey()
        let lock = DistributedLock(client: client, key: key, ttl: .milliseconds(250))
        #expect(await lock.acquire())
        // Either still counting down from at most 250 ms (0 in its last millisecond), or already
        // gone (-2) on a slow machine; never a whole-second TTL, never none (-1).
        let pttl = try #require(try await client.send("PTTL", key).int)
        #expect(pttl == -2 || (pttl >= 0 && pttl <= 250), "PTTL \(pttl)")
        try await waitUntil { try await client.send("EXISTS", key) == .integer(0) }
        #expect(!(await lock.isHeld))
    }

    @Test func theWatchdogKeepsALongHoldAlive() async throws {
        let client = try TestRedis.client()
        defer { client.close() }
        let key = TestRedis.uniqueKey()
        // The TTL leaves room for a loaded machine (renewal every 2 s, lease good for 6 s: the full
        // suite runs beside a dozen worker processes on two cores, and a 3 s lease once expired
        // there); the hold lasts 2.5 TTLs, so it survives only if renewals work.
        let lock = DistributedLock(client: client, key: key, ttl: .seconds(6), autoRenew: true, maxRenewals: 0)
        let holder = try await lock.withLock {
            try await Task.sleep(for: .milliseconds(15_000))
            return try await client.send("GET", key).string
        }
        #expect(holder == lock.token)
        #expect(await lock.lastLoss == nil)
        #expect(try await client.send("EXISTS", key) == .integer(0))
    }

    @Test func theRenewalLimitAbortsTheHolder() async throws {
        let client = try TestRedis.client()
        defer { client.close() }
        let key = TestRedis.uniqueKey()
        // Renewals every 2 s; a 6 s lease leaves a loaded machine 4 s of slack before it would expire
        // instead (3 s leases with 2 s of slack expired once under the full suite).
        let lock = DistributedLock(client: client, key: key, ttl: .seconds(6), autoRenew: true, maxRenewals: 2)
        let bodyCancelled = Flag()
        await #expect(throws: LockError.leaseLost(key: key, cause: .renewalLimit)) {
            try await lock.withLock {
                do { try await Task.sleep(for: .seconds(60)) } catch { bodyCancelled.set() }
            }
        }
        #expect(bodyCancelled.value)
        // Giving up frees the key for the next holder at once.
        #expect(try await client.send("EXISTS", key) == .integer(0))
    }

    @Test(arguments: ["DEL", "SET"])
    func theHolderIsCancelledWhenItsKeyIsDeletedOrOverwritten(_ steal: String) async throws {
        let client = try TestRedis.client()
        defer { client.close() }
        let key = TestRedis.uniqueKey()
        let ttl = Duration.seconds(6)
        let lock = DistributedLock(client: client, key: key, ttl: ttl, autoRenew: true, maxRenewals: 0)
        let entered = Flag()
        let stolenAt = Box<ContinuousClock.Instant>()
        let cancelledAt = Box<ContinuousClock.Instant>()
        let holder = Task {
            try await lock.withLock {
                entered.set()
                do { try await Task.sleep(for: .seconds(120)) } catch { cancelledAt.set(.now) }
            }
        }
        try await waitUntil { entered.value }
        stolenAt.set(.now)
        if steal == "DEL" { try await client.send("DEL", key) } else { try await client.send("SET", key, "thief") }
        await #expect(throws: LockError.leaseLost(key: key, cause: .stolen)) { try await holder.value }
        // Detected by the next renewal: within ttl/3 plus a round trip. The bound allows a loaded machine
        // but stays below the TTL, which is when an expiry-based scheme would notice.
        let elapsed = try #require(stolenAt.value).duration(to: try #require(cancelledAt.value))
        #expect(elapsed < ttl / 3 + .seconds(3))
        if steal == "SET" { #expect(try await client.send("GET", key).string == "thief") }
    }

    /// The caller's-task variant: the body runs in the caller's task, which the loss cancels
    /// through the handle the caller passed; the call throws once the body has returned.
    @Test func aBodyInTheCallersTaskIsCancelledThroughItsHandleWhenTheKeyIsStolen() async throws {
        let client = try TestRedis.client()
        defer { client.close() }
        let key = TestRedis.uniqueKey()
        let lock = DistributedLock(client: client, key: key, ttl: .seconds(6), autoRenew: true, maxRenewals: 0)
        let entered = Flag()
        let bodyCancelled = Flag()
        let handle = Box<Task<Void, any Error>>()
        let holder = Task {
            try await waitUntil { handle.value != nil }
            guard await lock.acquire() else { throw LockError.acquireTimedOut(key: key) }
            do {
                try await lock.runWhileHeld(cancellingOnLoss: { handle.value?.cancel() }) {
                    entered.set()
                    do { try await Task.sleep(for: .seconds(120)) } catch { bodyCancelled.set() }
                }
            } catch {
                await lock.release()
                throw error
            }
        }
        handle.set(holder)
        try await waitUntil { entered.value }
        try await client.send("SET", key, "thief")
        await #expect(throws: LockError.leaseLost(key: key, cause: .stolen)) { try await holder.value }
        #expect(bodyCancelled.value)
        #expect(try await client.send("GET", key).string == "thief", "the thief's key is left alone")

        // Held throughout: the body's result comes back, and nothing was cancelled.
        let calm = DistributedLock(client: client, key: TestRedis.uniqueKey(), ttl: .seconds(6), autoRenew: true, maxRenewals: 0)
        #expect(await calm.acquire())
        let value = try await calm.runWhileHeld(cancellingOnLoss: { Issue.record("cancelled without a loss") }) { 42 }
        #expect(value == 42 && !Task.isCancelled)
        await calm.release()
    }

    @Test func aBlockingAcquireGivesUpAtItsTimeout() async throws {
        let client = try TestRedis.client()
        defer { client.close() }
        let key = TestRedis.uniqueKey()
        let holder = DistributedLock(client: client, key: key, ttl: .seconds(30))
        #expect(await holder.acquire())
        let waiter = DistributedLock(client: client, key: key, ttl: .seconds(30))
        #expect(!(await waiter.acquireBlocking(pollInterval: .milliseconds(20), timeout: .milliseconds(200))))
        #expect(!(await waiter.isHeld))
        await holder.release()
    }

    @Test func aReleaseWakesAWaiterWithoutWaitingForItsPoll() async throws {
        let holderClient = try TestRedis.client()
        let waiterClient = try TestRedis.client()
        defer { holderClient.close(); waiterClient.close() }
        let key = TestRedis.uniqueKey()
        let holder = DistributedLock(client: holderClient, key: key, ttl: .seconds(60))
        #expect(await holder.acquire())
        let waiter = DistributedLock(client: waiterClient, key: key, ttl: .seconds(60))
        // A poll would only retry after 60 s (and the key's PTTL is 60 s): only the notification can wake it in time.
        let waiting = Task { await waiter.acquireBlocking(pollInterval: .seconds(60), timeout: .seconds(50)) }
        try await waitUntil { try await holderClient.send("PUBSUB", "SHARDNUMSUB", LockKeys.releaseChannel(forLock: key)).array?.last?.int == 1 }
        let released = ContinuousClock.now
        await holder.release()
        #expect(await waiting.value)
        #expect(released.duration(to: .now) < .seconds(30))
        #expect(try await waiterClient.send("GET", key).string == waiter.token)
        await waiter.release()
    }

    @Test func aCancelledHolderStillReleasesItsKey() async throws {
        let client = try TestRedis.client()
        defer { client.close() }
        let key = TestRedis.uniqueKey()
        let lock = DistributedLock(client: client, key: key, ttl: .seconds(30), autoRenew: true, maxRenewals: 0)
        let entered = Flag()
        let task = Task {
            try await lock.withLock {
                entered.set()
                try await Task.sleep(for: .seconds(120))
            }
        }
        try await waitUntil { entered.value }
        task.cancel()
        _ = try? await task.value
        #expect(try await client.send("EXISTS", key) == .integer(0))
        #expect(await lock.keysReleasedCount == 1)
    }

    @Test func withLockReleasesWhenTheBodyThrows() async throws {
        let client = try TestRedis.client()
        defer { client.close() }
        let key = TestRedis.uniqueKey()
        let lock = DistributedLock(client: client, key: key, ttl: .seconds(30))
        struct Boom: Error {}
        await #expect(throws: Boom.self) { try await lock.withLock { throw Boom() } }
        #expect(try await client.send("EXISTS", key) == .integer(0))
    }

    @Test func withLockExcludesConcurrentHoldersAcrossConnections() async throws {
        let key = TestRedis.uniqueKey()
        let clients = try (0..<4).map { _ in try TestRedis.client(poolSize: 1) }
        defer { clients.forEach { $0.close() } }
        let inside = Counter()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<8 {
                group.addTask {
                    for _ in 0..<10 {
                        let lock = DistributedLock(client: clients[i % 4], key: key, ttl: .seconds(10))
                        try await lock.withLock(timeout: .seconds(60)) {
                            #expect(inside.increment() == 1)
                            try await Task.sleep(for: .milliseconds(1))
                            inside.decrement()
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(inside.maximum == 1)
        #expect(try await clients[0].send("GET", LockKeys.fenceKey(forLock: key)).int == 80)
    }
}

@Suite struct LocalFallbackTests {
    @Test func twoInstancesWithTheSameKeyExcludeEachOtherWithoutRedis() async throws {
        let key = "local:\(UUID().uuidString)"
        let a = DistributedLock(client: nil, key: key)
        let b = DistributedLock(client: nil, key: key)
        #expect(await a.acquire())
        #expect(!(await b.acquire()))
        #expect(await a.acquire())  // re-entrant
        let waiting = Task { await b.acquireBlocking(pollInterval: .seconds(60), timeout: .seconds(50)) }
        await a.release()
        #expect(await a.isHeld)
        await a.release()
        #expect(await waiting.value)
        #expect(await b.isHeld)
        #expect(!(await a.acquire()))
        await b.release()
        #expect(await a.keysReleasedCount == 0)  // local releases delete nothing in Redis
    }

    @Test func localFencesGrowPerKey() async throws {
        let key = "local:\(UUID().uuidString)"
        var fences: [Int64] = []
        for _ in 0..<3 {
            let lock = DistributedLock(client: nil, key: key)
            #expect(await lock.acquire())
            fences.append(try #require(await lock.fence))
            await lock.release()
        }
        #expect(fences == [1, 2, 3])
    }

    @Test func localWithLockExcludesConcurrentTasks() async throws {
        let key = "local:\(UUID().uuidString)"
        let inside = Counter()
        await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<20 {
                group.addTask {
                    try await DistributedLock(client: nil, key: key).withLock(timeout: .seconds(60)) {
                        #expect(inside.increment() == 1)
                        await Task.yield()
                        inside.decrement()
                    }
                }
            }
        }
        #expect(inside.maximum == 1)
    }
}

/// Lock waiters on a Redis Cluster.
@Suite struct ClusterLockTests {
    /// When the release channel's slot moves to another node, the subscription on the old node is
    /// dropped: a waiter must subscribe where the slot lives now, or only its poll (here two
    /// minutes) would notice the release.
    @Test func aWaiterWhoseReleaseChannelMovedIsStillWokenByTheRelease() async throws {
        let cluster = try await PrivateRedisCluster()
        defer { cluster.stop() }
        let client = try cluster.client()
        defer { client.close() }
        let key = "sg:{moving}:lock:channel:a"
        let holder = DistributedLock(client: client, key: key, ttl: .seconds(120))
        #expect(await holder.acquire())
        let waiter = DistributedLock(client: client, key: key, ttl: .seconds(120))
        let acquired = Task { await waiter.acquireBlocking(pollInterval: .seconds(120), timeout: .seconds(240)) }
        // The waiter has tried once and subscribed when the server counts its subscription.
        let slot = HashSlot.of(key)
        let source = try await cluster.primary(forSlot: slot)
        let sourceClient = RedisClient(configuration: try RedisConfiguration(url: "redis://127.0.0.1:\(source.port)"))
        defer { sourceClient.close() }
        try await waitUntil(timeout: .seconds(60)) {
            (try await sourceClient.send("PUBSUB", "SHARDNUMSUB", LockKeys.releaseChannel(forLock: key)).array?.last?.int ?? 0) == 1
        }
        let target = try #require(try await cluster.nodes().first { $0.isPrimary && $0.id != source.id })
        try await cluster.migrate(slot: slot, toPort: target.port)
        await client.refreshClusterTopology()
        let released = ContinuousClock.now
        await holder.release()
        #expect(await acquired.value)
        #expect(released.duration(to: .now) < .seconds(60), "woken by the release, not by the two-minute poll")
        await waiter.release()
    }
}
