import DistributedLocking
import Foundation
import Logging
import RedisClient
import StreamWorker
import Synchronization
import TestSupport
import Testing

/// A worker in this process, with a handler of the test's choosing.
@Suite struct WorkerRecoveryTests {
    /// One consumer "solo" in group "g", reclaiming after two TTLs.
    static func configuration(stream: String, keys: WorkerKeys, lockTTL: Duration) -> WorkerConfiguration {
        var configuration = WorkerConfiguration.defaults
        configuration.partitions = keys.partitions
        configuration.streams = [stream]
        configuration.group = "g"
        configuration.consumer = "solo"
        configuration.keyPrefix = keys.prefix
        configuration.lockTTL = lockTTL
        configuration.claimIdle = lockTTL * 2
        configuration.blockTime = .milliseconds(100)
        return configuration
    }

    /// 20 channels × 100 seq-stamped messages, counted and checked against the histories, for the
    /// tests that disturb Redis while one in-process worker works through them.
    struct Workload {
        let admin: RedisClient
        let keys: WorkerKeys
        let stream: String
        let channels = 20, perChannel = 100
        var total: Int64 { Int64(channels * perChannel) }

        func produce() async throws {
            _ = try await admin.send("XGROUP", "CREATE", stream, "g", "0", "MKSTREAM")
            let producer = Producer(client: admin, keys: keys)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for c in 0..<channels {
                    group.addTask { for _ in 0..<perChannel { try await producer.send(stream: stream, channel: "ch\(c)") } }
                }
                try await group.waitForAll()
            }
        }

        func applied() async throws -> Int64 {
            let replies = try await admin.pipeline((0..<channels).map { RedisCommand("HGET", keys.state(channel: "ch\($0)"), "count") })
            return replies.reduce(0) { $0 + ((try? $1.get().int) ?? 0) }
        }

        /// Everything applied and acknowledged; tolerates errors (LOADING) while Redis recovers.
        func isDone() async -> Bool {
            let pending = (try? await admin.send("XPENDING", stream, "g"))?.array?.first?.int ?? 1
            return (try? await applied()) == total && pending == 0
        }

        func expectEveryHistoryCompleteAndInOrder() async throws {
            for c in 0..<channels {
                let history = try await admin.send("LRANGE", keys.history(channel: "ch\(c)"), 0, -1).array ?? []
                let seqs = history.compactMap { item -> Int? in
                    guard let data = item.bytes, let object = try? JSONSerialization.jsonObject(with: Data(data)) as? [String: Any] else { return nil }
                    return object["seq"] as? Int
                }
                #expect(seqs == Array(1...perChannel), "ch\(c)")
            }
        }
    }

    struct AlwaysFails: MessageHandler {
        struct Boom: Error {}
        var needsState: Bool { false }
        func handle(_ message: InboundMessage, state: ChannelState) async throws -> StateUpdate { throw Boom() }
    }

    @Test func aMessageWhoseHandlerKeepsFailingIsRedeliveredThenDeadLettered() async throws {
        let client = try TestRedis.client()
        defer { client.close() }
        let (keys, stream) = try await freshInput(client, prefix: "r")
        var configuration = Self.configuration(stream: stream, keys: keys, lockTTL: .milliseconds(500))
        configuration.maxDeliveries = 2
        try await Producer(client: client, keys: keys).send(stream: stream, channel: "c", fields: [StreamField("text", "x")])

        let worker = StreamWorker(configuration: configuration, client: client, handler: AlwaysFails(), logger: Logger(label: "test"))
        let running = Task { try await worker.run() }
        defer { running.cancel() }

        let dead = WorkerKeys.deadLetters(of: stream)
        try await waitUntil(timeout: .seconds(60)) { try await client.send("XLEN", dead).int == 1 }
        let entry = try await client.send("XRANGE", dead, "-", "+").array?.first?.array?.last?.array?.compactMap(\.string) ?? []
        var record: [String: String] = [:]
        for i in stride(from: 0, to: entry.count - 1, by: 2) { record[entry[i]] = entry[i + 1] }
        #expect(record["reason"] == "max_deliveries")
        #expect(record["deliveries"] == "3")
        #expect(record["f:text"] == "x")
        #expect(try await client.send("XPENDING", stream, "g").array?.first?.int == 0)
        // Dead-lettering seq 1 lets the channel move on.
        #expect(try await client.send("HGET", keys.state(channel: "c"), "last_seq").string == "1")
        #expect(try await client.send("HGET", keys.state(channel: "c"), "count").isNull)
    }

    /// One read brings good and bad entries mixed: the bad ones are dead-lettered with their
    /// reasons, and every good one is applied, each channel's in order.
    @Test func badEntriesAmongGoodOnesInOneReadAreDeadLetteredAndTheRestAppliedInOrder() async throws {
        let client = try TestRedis.client()
        defer { client.close() }
        let (keys, stream) = try await freshInput(client, prefix: "r")
        for seq in 1...6 {
            _ = try await client.send("XADD", stream, "*", "channel_id", "a", "seq", seq)
            if seq % 2 == 0 { _ = try await client.send("XADD", stream, "*", "text", "no channel \(seq)") }
            _ = try await client.send("XADD", stream, "*", "channel_id", "b", "seq", seq)
        }
        _ = try await client.send("XADD", stream, "*", "channel_id", "a", "seq", "x7")

        let handler = FailsOnceAt(failing: 0)
        let worker = StreamWorker(configuration: Self.configuration(stream: stream, keys: keys, lockTTL: .seconds(10)),
                                  client: client, handler: handler, logger: Logger(label: "test"))
        let running = Task { try await worker.run() }
        defer { running.cancel() }

        let dead = WorkerKeys.deadLetters(of: stream)
        try await waitUntil(timeout: .seconds(60)) {
            let pending = try await client.send("XPENDING", stream, "g").array?.first?.int
            return try await client.send("XLEN", dead).int == 4 && pending == 0
        }
        for channel in ["a", "b"] {
            let history = try await client.send("LRANGE", keys.history(channel: channel), 0, -1).array?.compactMap(\.string)
            #expect(history == (1...6).map { "\($0):\($0 - 1)" }, "\(channel)")
        }
        let reasons = try await client.send("XRANGE", dead, "-", "+").array?.map { entry -> String in
            let fields = entry.array?.last?.array?.compactMap(\.string) ?? []
            return fields.firstIndex(of: "reason").map { fields[$0 + 1] } ?? "?"
        } ?? []
        #expect(reasons.sorted() == ["invalid_seq", "missing_channel", "missing_channel", "missing_channel"], "\(reasons)")
    }

    /// Steals its own lock the first time it sees seq 1 and waits to be cancelled; counts the state.
    final class StealsItsLockOnce: MessageHandler {
        let client: RedisClient
        let lock: String
        let attempts = Mutex<[Int64: Int]>([:])
        let cancelled = Mutex(false)
        init(client: RedisClient, lock: String) { self.client = client; self.lock = lock }
        var needsState: Bool { true }
        func handle(_ message: InboundMessage, state: ChannelState) async throws -> StateUpdate {
            let seq = message.seq ?? 0
            let attempt = attempts.withLock { $0[seq, default: 0] += 1; return $0[seq]! }
            if seq == 1, attempt == 1 {
                // Another holder's token, gone again in a second, so the channel can be claimed afresh.
                _ = try await client.send("SET", lock, "thief", "PX", 1000)
                do {
                    try await Task.sleep(for: .seconds(60))
                } catch {
                    cancelled.withLock { $0 = true }
                    throw error
                }
            }
            return StateUpdate(increment: ["count": 1], append: ["\(seq):\(state.count)"])
        }
    }

    /// A handler whose lease is stolen while it works is cancelled at once; its message runs again
    /// from a fresh claim and is applied once, and the channel's later messages follow in order.
    @Test(arguments: [1, 4]) func aHandlerWhoseLeaseIsStolenIsCancelledAndItsMessageAppliedOnce(partitions: Int) async throws {
        let client = try TestRedis.client()
        defer { client.close() }
        let keys = WorkerKeys(prefix: TestRedis.uniqueKey("steal"), partitions: partitions)
        let stream = keys.prefix + ":in"
        for partitionStream in keys.streams(stream) {
            _ = try await client.send("XGROUP", "CREATE", partitionStream, "g", "0", "MKSTREAM")
        }
        let producer = Producer(client: client, keys: keys)
        for _ in 1...3 { try await producer.send(stream: stream, channel: "c") }

        let handler = StealsItsLockOnce(client: client, lock: keys.lock(channel: "c"))
        let worker = StreamWorker(configuration: Self.configuration(stream: stream, keys: keys, lockTTL: .seconds(3)),
                                  client: client, handler: handler, logger: Logger(label: "test"))
        let running = Task { try await worker.run() }
        defer { running.cancel() }

        try await waitUntil(timeout: .seconds(60)) {
            try await client.send("HGET", keys.state(channel: "c"), "count").int == 3
        }
        #expect(handler.cancelled.withLock { $0 }, "the robbed handler was cancelled")
        // A stall past the lease on this machine may add attempts; what was applied may not change.
        let attempts = handler.attempts.withLock { $0 }
        #expect((attempts[1] ?? 0) >= 2 && (attempts[2] ?? 0) >= 1 && (attempts[3] ?? 0) >= 1, "\(attempts)")
        let history = try await client.send("LRANGE", keys.history(channel: "c"), 0, -1).array?.compactMap(\.string)
        #expect(history == ["1:0", "2:1", "3:2"])
    }

    /// Reads the state, fails once at one seq, and records each seq with the count it saw.
    final class FailsOnceAt: MessageHandler {
        struct Boom: Error {}
        let failing: Int64
        let attempts = Mutex<[Int64: Int]>([:])
        init(failing: Int64) { self.failing = failing }
        var needsState: Bool { true }
        func handle(_ message: InboundMessage, state: ChannelState) async throws -> StateUpdate {
            let seq = message.seq ?? 0
            let attempt = attempts.withLock { $0[seq, default: 0] += 1; return $0[seq]! }
            if seq == failing, attempt == 1 { throw Boom() }
            return StateUpdate(increment: ["count": 1], append: ["\(seq):\(state.count)"])
        }
    }

    /// Ten messages queued at once run as runs: the one whose handler fails is retried after its
    /// predecessors were committed, and each handler saw the state its predecessors left.
    @Test func aHandlerFailureInARunCommitsWhatCameBeforeAndKeepsTheOrder() async throws {
        let client = try TestRedis.client()
        defer { client.close() }
        let (keys, stream) = try await freshInput(client, prefix: "run")
        let producer = Producer(client: client, keys: keys)
        for _ in 1...10 { try await producer.send(stream: stream, channel: "c") }

        let handler = FailsOnceAt(failing: 5)
        let worker = StreamWorker(configuration: Self.configuration(stream: stream, keys: keys, lockTTL: .seconds(5)),
                                  client: client, handler: handler, logger: Logger(label: "test"))
        let running = Task { try await worker.run() }
        defer { running.cancel() }
        try await waitUntil(timeout: .seconds(60)) { try await client.send("HGET", keys.state(channel: "c"), "last_seq").int == 10 }

        let history = try await client.send("LRANGE", keys.history(channel: "c"), 0, -1).array?.compactMap(\.string)
        #expect(history == (1...10).map { "\($0):\($0 - 1)" })
        #expect(handler.attempts.withLock { $0 } == Dictionary(uniqueKeysWithValues: (1...10).map { ($0, $0 == 5 ? 2 : 1) }),
                "nothing before the failure ran twice")
        #expect(try await client.send("XPENDING", stream, "g").array?.first?.int == 0)
    }

    @Test func aWorkerRidesOutDroppedConnectionsWithoutLosingOrRepeatingWork() async throws {
        let server = try await PrivateRedisServer()
        defer { server.stop() }
        let client = RedisClient(configuration: try server.configuration(commandTimeout: .seconds(5)))
        let admin = RedisClient(configuration: try server.configuration())
        defer { client.close(); admin.close() }
        let keys = WorkerKeys(prefix: "outage")
        let workload = Workload(admin: admin, keys: keys, stream: "outage:in")
        var configuration = Self.configuration(stream: workload.stream, keys: keys, lockTTL: .seconds(2))
        configuration.historyMax = 10_000
        try await workload.produce()
        let worker = StreamWorker(configuration: configuration, client: client, logger: Logger(label: "test"))
        let running = Task { try await worker.run() }
        defer { running.cancel() }

        try await waitUntil(timeout: .seconds(60)) { try await workload.applied() > 200 }
        // Drop every connection the worker has, twice, while it works.
        for _ in 0..<2 {
            _ = try? await admin.send("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
            _ = try? await admin.send("CLIENT", "KILL", "TYPE", "pubsub")
            try await Task.sleep(for: .milliseconds(300))
        }
        try await waitUntil(timeout: .seconds(120)) { await workload.isDone() }
        try await workload.expectEveryHistoryCompleteAndInOrder()
    }

    @Test func aRedisCrashWithAOFLosesNothingAndAppliesNothingTwice() async throws {
        // As deployed (docker-compose): AOF with fsync every second. A crash can drop the last
        // second of writes; each script's effects are one MULTI/EXEC in the AOF, so what survives
        // is a consistent prefix, and the worker redoes what was rolled back.
        let server = try await PrivateRedisServer(arguments: ["--appendonly", "yes", "--appendfsync", "everysec"])
        defer { server.stop() }
        let client = RedisClient(configuration: try server.configuration(commandTimeout: .seconds(5)))
        let admin = RedisClient(configuration: try server.configuration())
        defer { client.close(); admin.close() }
        let keys = WorkerKeys(prefix: "aof")
        let workload = Workload(admin: admin, keys: keys, stream: "aof:in")
        var configuration = Self.configuration(stream: workload.stream, keys: keys, lockTTL: .seconds(2))
        configuration.historyMax = 10_000
        try await workload.produce()
        // The workload itself must survive the crash: wait for its fsync.
        try await Task.sleep(for: .milliseconds(2500))

        let worker = StreamWorker(configuration: configuration, client: client, logger: Logger(label: "test"))
        let running = Task { try await worker.run() }
        defer { running.cancel() }
        try await waitUntil(timeout: .seconds(60)) { try await workload.applied() > 300 }
        try await server.crashAndRestart()
        // Redis answers LOADING while it replays the AOF; the checks ride that out like the worker.
        try await waitUntil(timeout: .seconds(180)) { await workload.isDone() }
        try await workload.expectEveryHistoryCompleteAndInOrder()
    }

    @Test func aWorkerStartedWhileRedisIsDownWaitsUnreadyAndThenStartsWhenItComesBack() async throws {
        let server = try await PrivateRedisServer(arguments: ["--appendonly", "yes"])
        defer { server.stop() }
        let admin = RedisClient(configuration: try server.configuration())
        defer { admin.close() }
        let keys = WorkerKeys(prefix: "late")
        let stream = "late:in"
        // Unusable before the worker starts: every new connection is refused (NOAUTH).
        try await admin.send("CONFIG", "SET", "requirepass", "not-the-workers")
        let client = RedisClient(configuration: try server.configuration(commandTimeout: .seconds(2)))
        defer { client.close() }
        let worker = StreamWorker(configuration: Self.configuration(stream: stream, keys: keys, lockTTL: .seconds(2)),
                                  client: client, logger: Logger(label: "test"))
        let running = Task { try await worker.run() }
        defer { running.cancel() }
        try await waitUntil(timeout: .seconds(30)) {
            guard case .notReady(let reason) = worker.health.readiness else { return false }
            return reason.hasPrefix("starting") && reason.contains("NOAUTH")
        }
        // Redis accepts the worker again: the group is created and messages flow.
        let authed = RedisClient(configuration: try server.configuration(password: "not-the-workers"))
        defer { authed.close() }
        try await authed.send("CONFIG", "SET", "requirepass", "")
        try await waitUntil(timeout: .seconds(60)) { worker.health.readiness == .ready }
        _ = try await Producer(client: authed, keys: keys).send(stream: stream, channel: "c")
        try await waitUntil(timeout: .seconds(60)) { try await authed.send("HGET", keys.state(channel: "c"), "count").int == 1 }
    }
}
