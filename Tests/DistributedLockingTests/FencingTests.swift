import DistributedLocking
import Foundation
import RedisClient
import TestSupport
import Testing

@Suite struct FencedStoreTests {
    @Test func theStoreRejectsAWriteWithALowerFenceThanRecorded() async throws {
        let client = try TestRedis.client()
        defer { client.close() }
        let store = RedisFencedStore(client: client)
        let target = FencedTarget(stateKey: TestRedis.uniqueKey())
        #expect(try await store.apply(StateUpdate(setFields: ["owner": "new"]), to: target, fence: 7) == .applied)
        #expect(try await store.apply(StateUpdate(setFields: ["owner": "old"]), to: target, fence: 6) == .staleFence(recorded: 7))
        #expect(try await store.apply(StateUpdate(increment: ["n": 1]), to: target, fence: 7) == .applied)
        let flat: [String] = try await client.send("HGETALL", target.stateKey).array?.compactMap(\.string) ?? []
        var state: [String: String] = [:]
        for i in stride(from: 0, to: flat.count, by: 2) { state[flat[i]] = flat[i + 1] }
        #expect(state == ["owner": "new", "n": "1", "fence": "7"])
    }

    @Test func appendsAreCappedToTheNewestEntries() async throws {
        let client = try TestRedis.client()
        defer { client.close() }
        let store = RedisFencedStore(client: client)
        let key = TestRedis.uniqueKey()
        let target = FencedTarget(stateKey: key, listKey: key + ":history")
        for i in 1...5 {
            _ = try await store.apply(StateUpdate(increment: ["count": 1], append: ["m\(i)"], listCap: 3), to: target, fence: 1)
        }
        #expect(try await client.send("LRANGE", target.listKey!, 0, -1).array?.compactMap(\.string) == ["m3", "m4", "m5"])
        #expect(try await client.send("HGET", key, "count").int == 5)
    }

    @Test func aRejectedWriteChangesNothing() async throws {
        let client = try TestRedis.client()
        defer { client.close() }
        let store = RedisFencedStore(client: client)
        let key = TestRedis.uniqueKey()
        let target = FencedTarget(stateKey: key, listKey: key + ":history")
        _ = try await store.apply(StateUpdate(increment: ["count": 1], append: ["a"]), to: target, fence: 3)
        #expect(try await store.apply(StateUpdate(increment: ["count": 1], append: ["b"]), to: target, fence: 2) == .staleFence(recorded: 3))
        #expect(try await client.send("HGET", key, "count").int == 1)
        #expect(try await client.send("LLEN", target.listKey!).int == 1)
    }

    @Test func theWriterRefusesLocallyWhenTheLockIsNotHeld() async throws {
        let client = try TestRedis.client()
        defer { client.close() }
        let key = TestRedis.uniqueKey()
        let lock = DistributedLock(client: client, key: key)
        let writer = FencedWriter(store: RedisFencedStore(client: client), lock: lock)
        let target = FencedTarget(stateKey: key + ":state")
        await #expect(throws: LockError.notHeld(key: key)) { try await writer.write(StateUpdate(setFields: ["x": "1"]), to: target) }
        #expect(try await client.send("EXISTS", target.stateKey) == .integer(0))
        #expect(writer.token == lock.token)
    }

    @Test func anOlderHoldersWriteIsRejectedByTheStoreEvenIfItThinksItHoldsTheLock() async throws {
        let client = try TestRedis.client()
        defer { client.close() }
        let key = TestRedis.uniqueKey()
        let store = RedisFencedStore(client: client)
        let target = FencedTarget(stateKey: key + ":state")
        let old = DistributedLock(client: client, key: key, ttl: .seconds(30))
        #expect(await old.acquire())
        try await client.send("DEL", key)  // the lease ends behind the old holder's back
        let new = DistributedLock(client: client, key: key, ttl: .seconds(30))
        #expect(await new.acquire())
        try await FencedWriter(store: store, lock: new).write(StateUpdate(setFields: ["owner": "new"]), to: target)
        // The old holder's local view still says "held": only the store can stop it.
        #expect(await old.isHeld)
        let oldFence = try #require(await old.fence)
        let newFence = try #require(await new.fence)
        await #expect(throws: LockError.staleFence(key: key, fence: oldFence, recorded: newFence)) {
            try await FencedWriter(store: store, lock: old).write(StateUpdate(setFields: ["owner": "old"]), to: target)
        }
        #expect(try await client.send("HGET", target.stateKey, "owner").string == "new")
        await new.release()
        await old.release()
    }
}

@Suite struct LeaseFailureTests {
    @Test func aHolderWhoseRedisStopsAnsweringIsAbortedByItsOwnDeadline() async throws {
        let server = try await PrivateRedisServer()
        defer { server.stop() }
        let client = RedisClient(configuration: try server.configuration(commandTimeout: .milliseconds(500)))
        let admin = RedisClient(configuration: try server.configuration())
        defer { client.close(); admin.close() }
        let key = "sg:lock:channel:paused"
        let lock = DistributedLock(client: client, key: key, ttl: .seconds(1), autoRenew: true, maxRenewals: 0)
        let entered = Flag()
        let holder = Task {
            try await lock.withLock {
                entered.set()
                try await Task.sleep(for: .seconds(120))
            }
        }
        try await waitUntil { entered.value }
        // Every renewal now hangs; nothing from Redis will ever say "lost".
        try await admin.send("CLIENT", "PAUSE", 3000, "ALL")
        await #expect(throws: LockError.leaseLost(key: key, cause: .expired)) { try await holder.value }
        #expect(await lock.lastLoss == .expired)
    }

    @Test func aPausedHoldersLateWriteIsRejectedAfterANewerHolderWrote() async throws {
        let client = try TestRedis.client()
        defer { client.close() }
        let key = TestRedis.uniqueKey()
        let stateKey = key + ":state"
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sg-pause-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let ready = directory.appendingPathComponent("ready").path
        let go = directory.appendingPathComponent("go").path
        let output = directory.appendingPathComponent("a.out").path

        // 1. Process A holds the lock with a 1 s TTL ...
        let a = try ChildProcess(builtProductPath("sgctl"), [
            "lock", "hold", "--redis-url", try TestRedis.url(), "--key", key, "--ttl", "1",
            "--state-key", stateKey, "--value", "A", "--ready-file", ready, "--go-file", go,
        ], stdout: output)
        defer { a.killNow() }
        try await waitUntil(timeout: .seconds(60)) { FileManager.default.fileExists(atPath: ready) }
        let fenceA = try #require(Int64(try String(contentsOfFile: ready, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))

        // ... and is frozen, so its watchdog cannot renew.
        a.signal(SIGSTOP)
        try await waitUntil { try await client.send("EXISTS", key) == .integer(0) }

        // 2. Process B (this test) acquires and writes.
        let b = DistributedLock(client: client, key: key, ttl: .seconds(30))
        #expect(await b.acquire())
        #expect(try #require(await b.fence) > fenceA)
        try await FencedWriter(store: RedisFencedStore(client: client), lock: b).write(StateUpdate(setFields: ["owner": "B"]), to: FencedTarget(stateKey: stateKey))

        // 3. A resumes and writes at once.
        _ = FileManager.default.createFile(atPath: go, contents: nil)
        a.signal(SIGCONT)
        #expect(await a.wait(timeout: .seconds(60)) == 0)

        // 4. B's state survives; the store rejected A's write.
        let report = try #require(try String(contentsOfFile: output, encoding: .utf8).split(separator: "\n").last(where: { $0.hasPrefix("{") }))
        let json = try #require(try JSONSerialization.jsonObject(with: Data(report.utf8)) as? [String: Any])
        #expect(json["store"] as? String == "stale")
        #expect(["refused_locally", "stale"].contains(json["writer"] as? String))
        #expect(try await client.send("HGET", stateKey, "owner").string == "B")
        #expect(try await client.send("HGET", stateKey, "fence").int == (await b.fence))
        await b.release()
    }
}

@Suite struct FencedStoreAtomicityTests {
    @Test func anUpdateThatCannotApplyInFullChangesNothing() async throws {
        let client = try TestRedis.client()
        defer { client.close() }
        let store = RedisFencedStore(client: client)
        let key = TestRedis.uniqueKey()
        try await client.send("HSET", key, "label", "not-a-number")
        let update = StateUpdate(setFields: ["owner": "x"], increment: ["label": 1])
        await #expect(throws: RedisError.self) { try await store.apply(update, to: FencedTarget(stateKey: key), fence: 1) }
        #expect(try await client.send("HGET", key, "owner").isNull)
        #expect(try await client.send("HGET", key, "fence").isNull)

        let listKey = key + ":list"
        try await client.send("SET", listKey, "a string")
        await #expect(throws: RedisError.self) {
            try await store.apply(StateUpdate(setFields: ["owner": "y"], append: ["v"]), to: FencedTarget(stateKey: key, listKey: listKey), fence: 1)
        }
        #expect(try await client.send("HGET", key, "owner").isNull)
    }
}
