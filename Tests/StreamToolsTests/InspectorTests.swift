import DistributedLocking
import RedisClient
import StreamTools
import StreamWorker
import TestSupport
import Testing

@Suite struct InspectorTests {
    @Test func heldLocksAreListedWithTheirTTLAndTheHoldersFence() async throws {
        let client = try TestRedis.client()
        defer { client.close() }
        let keys = WorkerKeys(prefix: TestRedis.uniqueKey("inspect"))
        let inspector = Inspector(client: client, keys: keys)
        #expect(try await inspector.heldLocks().isEmpty)

        let a = DistributedLock(client: client, key: keys.lock(channel: "a"), ttl: .seconds(20))
        let b = DistributedLock(client: client, key: keys.lock(channel: "b"), ttl: .seconds(20))
        #expect(await a.acquire())
        // A second claim of b draws a higher fence than its first.
        #expect(await b.acquire())
        await b.release()
        #expect(await b.acquire())
        try await client.send("HSET", keys.state(channel: "b"), "fence", 1)

        let locks = try await inspector.heldLocks()
        #expect(locks.map(\.channel) == ["a", "b"])
        #expect(locks.map(\.fence) == [await a.fence, await b.fence])
        #expect(locks[1].fence == 2)
        #expect(locks[1].committedFence == 1)
        for lock in locks {
            let ttl = try #require(lock.ttlMilliseconds)
            #expect(ttl > 0 && ttl <= 20_000)
        }
        await a.release()
        #expect(try await inspector.heldLocks().map(\.channel) == ["b"])
        await b.release()
        #expect(try await inspector.heldLocks().isEmpty)
    }

    @Test func theGroupReportHasPendingLagConsumersAndDeadLetterReasons() async throws {
        let client = try TestRedis.client()
        defer { client.close() }
        let keys = WorkerKeys(prefix: TestRedis.uniqueKey("inspect"))
        let stream = keys.prefix + ":in"
        try await client.send("XGROUP", "CREATE", stream, "g", "0", "MKSTREAM")
        for i in 0..<10 { try await client.send("XADD", stream, "*", "channel_id", "c", "n", i) }
        _ = try await client.send("XREADGROUP", "GROUP", "g", "w1", "COUNT", 3, "STREAMS", stream, ">")
        _ = try await client.send("XREADGROUP", "GROUP", "g", "w2", "COUNT", 2, "STREAMS", stream, ">")
        for reason in ["oversized", "max_deliveries", "max_deliveries"] {
            try await client.send("XADD", WorkerKeys.deadLetters(of: stream), "*", "original_id", "1-1", "reason", reason, "f:channel_id", "c")
        }
        let lock = DistributedLock(client: client, key: keys.lock(channel: "c"), ttl: .seconds(20))
        #expect(await lock.acquire())
        defer { Task { await lock.release() } }

        let report = try await Inspector(client: client, keys: keys).group(stream: stream, group: "g")
        #expect(report.length == 10)
        #expect(report.pending == 5)
        #expect(report.lag == 5)
        #expect(report.consumers.map(\.name) == ["w1", "w2"])
        #expect(report.consumers.map(\.pending) == [3, 2])
        #expect(report.locks.map(\.channel) == ["c"])
        #expect(report.deadLetters == 3)
        #expect(report.topReasons.map(\.reason) == ["max_deliveries", "oversized"])
        #expect(report.topReasons.map(\.count) == [2, 1])
        await #expect(throws: InspectError.self) { try await Inspector(client: client, keys: keys).group(stream: stream, group: "missing") }
    }
}
