import DistributedLocking
import Foundation
import RedisClient
@testable import StreamWorker
import TestSupport
import Testing

/// The commit and dead-letter scripts against a real Redis.
@Suite struct WorkerScriptTests {
    struct Fixture {
        let client: RedisClient
        let keys: WorkerKeys
        let stream: String
        let channel = "c1"

        init() throws {
            client = try TestRedis.client()
            keys = WorkerKeys(prefix: TestRedis.uniqueKey("p"))
            stream = keys.prefix + ":stream"
        }

        /// Adds an entry and delivers it to consumer "w", so it is pending.
        func pendingEntry(seq: Int64?) async throws -> String {
            _ = try? await client.send("XGROUP", "CREATE", stream, "g", "0", "MKSTREAM")
            var command = RedisCommand("XADD", stream, "*", "channel_id", channel)
            if let seq { command.append("seq"); command.append(String(seq)) }
            let id = try #require(try await client.send(command).string)
            _ = try await client.send("XREADGROUP", "GROUP", "g", "w", "COUNT", 100, "STREAMS", stream, ">")
            return id
        }

        func commit(_ lock: DistributedLock, id: String, seq: Int64?, update: StateUpdate = StateUpdate(increment: ["count": 1]), force: Bool = false) async throws -> CommitOutcome {
            let arguments: [any RedisArgumentConvertible] = [
                lock.token, String(await lock.fence ?? 0), "g", id, seq.map(String.init) ?? "",
                LockKeys.releaseChannel(forLock: lock.key), force ? "1" : "0",
            ] + update.scriptArguments
            return try CommitOutcome.parse(try await client.evaluate(
                WorkerScripts.commit,
                keys: [lock.key, keys.state(channel: channel), keys.history(channel: channel), stream, keys.deadSeqs(channel: channel)],
                arguments: arguments))
        }

        func lock() async -> DistributedLock {
            let lock = DistributedLock(client: client, key: keys.lock(channel: channel), ttl: .seconds(30))
            _ = await lock.acquire()
            return lock
        }

        func state(_ field: String) async throws -> String? { try await client.send("HGET", keys.state(channel: channel), field).string }
        func pendingCount() async throws -> Int64 { try await client.send("XPENDING", stream, "g").array?.first?.int ?? -1 }
    }

    @Test func aCommitAcknowledgesAppliesRecordsAndReleasesInOneStep() async throws {
        let f = try Fixture()
        defer { f.client.close() }
        let id = try await f.pendingEntry(seq: 1)
        let lock = await f.lock()
        #expect(try await f.commit(lock, id: id, seq: 1) == .applied)
        #expect(try await f.state("count") == "1")
        #expect(try await f.state("last_id") == id)
        #expect(try await f.state("last_seq") == "1")
        #expect(try await f.state("fence") == String(try #require(await lock.fence)))
        #expect(try await f.pendingCount() == 0)
        #expect(try await f.client.send("EXISTS", lock.key) == .integer(0))
    }

    @Test func aCommitAnnouncesTheChannelsNewLastSeqWithItsRelease() async throws {
        let f = try Fixture()
        defer { f.client.close() }
        let id = try await f.pendingEntry(seq: 1)
        let lock = await f.lock()
        let subscription = try await f.client.subscriber.subscribe(LockKeys.releaseChannel(forLock: lock.key))
        defer { subscription.cancel() }
        #expect(try await f.commit(lock, id: id, seq: 1) == .applied)
        #expect(await subscription.next(timeout: .seconds(10)) == .message(Array("\(lock.token) 1".utf8)))
    }

    @Test func aCommitOverStateOfTheWrongTypeFailsAndChangesNothing() async throws {
        let f = try Fixture()
        defer { f.client.close() }
        let id = try await f.pendingEntry(seq: 1)
        let lock = await f.lock()
        try await f.client.send("SET", f.keys.state(channel: f.channel), "not a hash")
        await #expect { try await f.commit(lock, id: id, seq: 1) } throws: { ($0 as? RedisError)?.serverCode == "WRONGTYPE" }
        try await f.client.send("DEL", f.keys.state(channel: f.channel))
        try await f.client.send("SET", f.keys.history(channel: f.channel), "not a list")
        let append = StateUpdate(increment: ["count": 1], append: ["x"], listCap: 10)
        await #expect { try await f.commit(lock, id: id, seq: 1, update: append) } throws: { ($0 as? RedisError)?.serverCode == "WRONGTYPE" }
        // Lua's tonumber takes all of these; HINCRBY would refuse them halfway through the commit.
        for notACounter in ["many", "1.5", "1e3", "0x10", "1234567890123456789"] {
            try await f.client.send("HSET", f.keys.state(channel: f.channel), "count", notACounter)
            await #expect { try await f.commit(lock, id: id, seq: 1) } throws: { ($0 as? RedisError)?.serverCode == "ERR" }
        }
        // Nothing acknowledged, applied or released.
        #expect(try await f.pendingCount() == 1)
        #expect(try await f.state("last_id") == nil)
        #expect(try await f.client.send("GET", lock.key).string == lock.token)
    }

    @Test func aCommitWithoutTheLockAppliesNothing() async throws {
        let f = try Fixture()
        defer { f.client.close() }
        let id = try await f.pendingEntry(seq: 1)
        let lock = await f.lock()
        try await f.client.send("SET", lock.key, "someone-else")
        #expect(try await f.commit(lock, id: id, seq: 1) == .lost)
        #expect(try await f.state("count") == nil)
        #expect(try await f.pendingCount() == 1)
    }

    @Test func aCommitWithAnOlderFenceIsStale() async throws {
        let f = try Fixture()
        defer { f.client.close() }
        let id = try await f.pendingEntry(seq: nil)
        let lock = await f.lock()
        try await f.client.send("HSET", f.keys.state(channel: f.channel), "fence", 1_000_000)
        #expect(try await f.commit(lock, id: id, seq: nil) == .stale(recorded: 1_000_000))
        #expect(try await f.pendingCount() == 1)
        #expect(try await f.state("count") == nil)
    }

    @Test func anEntryAlreadyAcknowledgedIsADuplicate() async throws {
        let f = try Fixture()
        defer { f.client.close() }
        let id = try await f.pendingEntry(seq: nil)
        try await f.client.send("XACK", f.stream, "g", id)
        let lock = await f.lock()
        #expect(try await f.commit(lock, id: id, seq: nil) == .duplicate)
        #expect(try await f.state("count") == nil)
        #expect(try await f.client.send("EXISTS", lock.key) == .integer(0))
    }

    @Test func aSeqAtOrBelowLastSeqIsAcknowledgedButNotApplied() async throws {
        let f = try Fixture()
        defer { f.client.close() }
        let first = try await f.pendingEntry(seq: 1)
        #expect(try await f.commit(await f.lock(), id: first, seq: 1) == .applied)
        let again = try await f.pendingEntry(seq: 1)
        #expect(try await f.commit(await f.lock(), id: again, seq: 1) == .duplicate)
        #expect(try await f.state("count") == "1")
        #expect(try await f.pendingCount() == 0)
    }

    @Test func aGapAppliesNothingUnlessForced() async throws {
        let f = try Fixture()
        defer { f.client.close() }
        let id = try await f.pendingEntry(seq: 3)
        #expect(try await f.commit(await f.lock(), id: id, seq: 3) == .gap(lastSeq: 0))
        #expect(try await f.pendingCount() == 1)
        #expect(try await f.commit(await f.lock(), id: id, seq: 3, force: true) == .applied)
        #expect(try await f.state("last_seq") == "3")
        #expect(try await f.state("skipped_seqs") == "2")
    }

    @Test func deadLetteringASeqLetsLaterMessagesThrough() async throws {
        let f = try Fixture()
        defer { f.client.close() }
        let one = try await f.pendingEntry(seq: 1)
        let two = try await f.pendingEntry(seq: 2)
        let three = try await f.pendingEntry(seq: 3)
        let dl = DeadLetterer(client: f.client, group: "g", consumer: "w", keys: f.keys, logger: .init(label: "t"))
        // seq 2 dies before seq 1 is applied: it is remembered, then skipped over.
        #expect(try await dl.deadLetter(stream: f.stream, id: two, fields: [StreamField("channel_id", f.channel)], reason: "max_deliveries",
                                        detail: "test", deliveries: 6, channel: f.channel, seq: 2))
        #expect(try await f.commit(await f.lock(), id: one, seq: 1) == .applied)
        #expect(try await f.state("last_seq") == "2")
        #expect(try await f.commit(await f.lock(), id: three, seq: 3) == .applied)
        #expect(try await f.state("count") == "2")

        let dead = try await f.client.send("XRANGE", WorkerKeys.deadLetters(of: f.stream), "-", "+")
        let fields: [String] = dead.array?.first?.array?.last?.array?.compactMap(\.string) ?? []
        var record: [String: String] = [:]
        for i in stride(from: 0, to: fields.count - 1, by: 2) { record[fields[i]] = fields[i + 1] }
        #expect(record["original_id"] == two)
        #expect(record["reason"] == "max_deliveries")
        #expect(record["deliveries"] == "6")
        #expect(record["consumer"] == "w")
        #expect(record["f:channel_id"] == f.channel)
        #expect(record["time_ms"].flatMap { Int64($0) } != nil)
    }

    @Test func deadLetteringTwiceWritesOnce() async throws {
        let f = try Fixture()
        defer { f.client.close() }
        let id = try await f.pendingEntry(seq: nil)
        let dl = DeadLetterer(client: f.client, group: "g", consumer: "w", keys: f.keys, logger: .init(label: "t"))
        #expect(try await dl.deadLetter(stream: f.stream, id: id, fields: [], reason: "r", detail: "", deliveries: 1, channel: nil, seq: nil))
        #expect(!(try await dl.deadLetter(stream: f.stream, id: id, fields: [], reason: "r", detail: "", deliveries: 1, channel: nil, seq: nil)))
        #expect(try await f.client.send("XLEN", WorkerKeys.deadLetters(of: f.stream)) == .integer(1))
    }

    @Test func theProducerStampsConsecutiveSeqsPerChannel() async throws {
        let f = try Fixture()
        defer { f.client.close() }
        let producer = Producer(client: f.client, keys: f.keys)
        var seqs: [Int64] = []
        for i in 0..<5 { seqs.append(try await producer.send(stream: f.stream, channel: i % 2 == 0 ? "a" : "b").seq) }
        #expect(seqs == [1, 1, 2, 2, 3])
        let last = try await f.client.send("XREVRANGE", f.stream, "+", "-", "COUNT", 1)
        let fields = last.array?.first?.array?.last?.array?.compactMap(\.string)
        #expect(fields == ["channel_id", "a", "seq", "3"])
    }
}
