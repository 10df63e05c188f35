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
            let outcome = try await commitRun(lock, [(id, seq, force ? .handledAcceptingGap : .handled, update)])
            return outcome.attempt(at: 0)
        }

        /// Commits a run of messages under `lock`: entry id, seq, mode and update of each.
        func commitRun(_ lock: DistributedLock, _ messages: [(String, Int64?, RunCommit.Mode, StateUpdate)]) async throws -> RunCommit.Outcome {
            let items = messages.map { id, seq, mode, update in
                RunCommit.Item(message: InboundMessage(stream: stream, id: id, channel: channel, seq: seq, fields: []),
                               mode: mode, update: update)
            }
            let commit = RunCommit(items: items, lockKey: lock.key, token: lock.token, fence: await lock.fence ?? 0, group: "g", keys: keys)
            return try await commit.run(on: client)
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

    // MARK: Runs: several messages of a channel under one lease and one commit

    @Test func aRunIsAcknowledgedAppliedRecordedAndReleasedInOneCommit() async throws {
        let f = try Fixture()
        defer { f.client.close() }
        let ids = [try await f.pendingEntry(seq: 1), try await f.pendingEntry(seq: 2), try await f.pendingEntry(seq: 3)]
        let lock = await f.lock()
        let subscription = try await f.client.subscribe(shardChannel: LockKeys.releaseChannel(forLock: lock.key))
        defer { subscription.cancel() }
        let outcome = try await f.commitRun(lock, ids.enumerated().map { ($1, Int64($0 + 1), .handled, StateUpdate(increment: ["count": 1], append: ["m\($0)"])) })
        #expect(outcome == .committed(lastSeq: 3, results: [.applied, .applied, .applied]))
        #expect(try await f.state("count") == "3")
        #expect(try await f.state("last_seq") == "3")
        #expect(try await f.state("last_id") == ids[2])
        #expect(try await f.client.send("LRANGE", f.keys.history(channel: f.channel), 0, -1).array?.compactMap(\.string) == ["m0", "m1", "m2"])
        #expect(try await f.pendingCount() == 0)
        #expect(try await f.client.send("EXISTS", lock.key) == .integer(0))
        #expect(await subscription.next(timeout: .seconds(10)) == .message(Array("\(lock.token) 3".utf8)))
    }

    @Test func aRunStopsAtAMissingSeqAndLeavesTheRestPending() async throws {
        let f = try Fixture()
        defer { f.client.close() }
        let one = try await f.pendingEntry(seq: 1), two = try await f.pendingEntry(seq: 2), four = try await f.pendingEntry(seq: 4)
        let outcome = try await f.commitRun(await f.lock(), [(one, 1, .handled, StateUpdate(increment: ["count": 1])),
                                                              (two, 2, .handled, StateUpdate(increment: ["count": 1])),
                                                              (four, 4, .handled, StateUpdate(increment: ["count": 1]))])
        #expect(outcome == .committed(lastSeq: 2, results: [.applied, .applied, .gap]))
        #expect(try await f.state("count") == "2")
        #expect(try await f.state("last_id") == two)
        #expect(try await f.pendingCount() == 1)
    }

    @Test func plannedDuplicatesAreAcknowledgedAndTheRestApplied() async throws {
        let f = try Fixture()
        defer { f.client.close() }
        let one = try await f.pendingEntry(seq: 1), two = try await f.pendingEntry(seq: 2), three = try await f.pendingEntry(seq: 3)
        try await f.client.send("HSET", f.keys.state(channel: f.channel), "last_seq", 2)
        let outcome = try await f.commitRun(await f.lock(), [(one, 1, .duplicate, StateUpdate()), (two, 2, .duplicate, StateUpdate()),
                                                              (three, 3, .handled, StateUpdate(increment: ["count": 1]))])
        #expect(outcome == .committed(lastSeq: 3, results: [.duplicate, .duplicate, .applied]))
        #expect(try await f.state("count") == "1")
        #expect(try await f.pendingCount() == 0)
    }

    /// The handler of a later message saw the state after the earlier one applied; if that one
    /// turns out already applied, the later update was computed on a state that never existed.
    /// Dead-lettered by another worker's reclaimer while this run still held it: not applied here.
    @Test func anEntryAcknowledgedElsewhereDuringTheRunIsADuplicateNotApplied() async throws {
        let f = try Fixture()
        defer { f.client.close() }
        let one = try await f.pendingEntry(seq: 1), two = try await f.pendingEntry(seq: 2)
        try await f.client.send("XACK", f.stream, "g", one)
        let outcome = try await f.commitRun(await f.lock(), [(one, 1, .handled, StateUpdate(increment: ["count": 1])),
                                                              (two, 2, .handled, StateUpdate(increment: ["count": 1]))])
        #expect(outcome == .committed(lastSeq: 0, results: [.duplicate, .notReached]))
        #expect(try await f.state("count") == nil)
        #expect(try await f.pendingCount() == 1)
    }

    @Test func aSkippedGapIsCountedOnlyInACounterAndCheckedBeforeAnyWrite() async throws {
        let f = try Fixture()
        defer { f.client.close() }
        let three = try await f.pendingEntry(seq: 3)
        try await f.client.send("HSET", f.keys.state(channel: f.channel), "skipped_seqs", "many")
        let lock = await f.lock()
        await #expect { try await f.commitRun(lock, [(three, 3, .handledAcceptingGap, StateUpdate(increment: ["count": 1]))]) }
            throws: { ($0 as? RedisError)?.serverCode == "ERR" }
        #expect(try await f.state("count") == nil)
        #expect(try await f.pendingCount() == 1, "not acknowledged")
        // Set in the same run before the skip: refused as well.
        try await f.client.send("HDEL", f.keys.state(channel: f.channel), "skipped_seqs")
        await #expect { try await f.commitRun(lock, [(three, 3, .handledAcceptingGap, StateUpdate(setFields: ["skipped_seqs": "x"]))]) }
            throws: { ($0 as? RedisError)?.serverCode == "ERR" }
        #expect(try await f.pendingCount() == 1)
    }

    @Test func aSeqThatGapTimeoutSkippedIsNeitherAppliedNorAcknowledgedWhenItArrives() async throws {
        let f = try Fixture()
        defer { f.client.close() }
        let one = try await f.pendingEntry(seq: 1), four = try await f.pendingEntry(seq: 4)
        #expect(try await f.commit(await f.lock(), id: one, seq: 1) == .applied)
        #expect(try await f.commit(await f.lock(), id: four, seq: 4, force: true) == .applied)
        let skipped = { try await Set(f.client.send("SMEMBERS", f.keys.skippedSeqs(channel: f.channel)).array?.compactMap(\.string) ?? []) }
        #expect(try await skipped() == ["2", "3"])
        let two = try await f.pendingEntry(seq: 2)
        #expect(try await f.commit(await f.lock(), id: two, seq: 2) == .skipped)
        // Planned as a duplicate (at or below last_seq when claimed), the same.
        let planned = try await f.commitRun(await f.lock(), [(two, 2, .duplicate, StateUpdate())])
        #expect(planned == .committed(lastSeq: 4, results: [.skipped]))
        #expect(try await f.state("count") == "2")
        #expect(try await f.pendingCount() == 1, "left for the worker to dead-letter")
        // Dead-lettered, the seq is no longer awaited; one never skipped stays a plain duplicate.
        let dl = DeadLetterer(client: f.client, group: "g", consumer: "w", keys: f.keys, logger: .init(label: "t"))
        #expect(try await dl.deadLetter(stream: f.stream, id: two, fields: [], reason: "skipped_seq", detail: "", deliveries: 1,
                                        channel: f.channel, seq: 2))
        #expect(try await skipped() == ["3"])
        #expect(try await f.pendingCount() == 0)
        let again = try await f.pendingEntry(seq: 1)
        #expect(try await f.commit(await f.lock(), id: again, seq: 1) == .duplicate)
    }

    @Test func aMessageThatIsNotAsPlannedStopsTheRestOfItsRun() async throws {
        let f = try Fixture()
        defer { f.client.close() }
        let one = try await f.pendingEntry(seq: 1), two = try await f.pendingEntry(seq: 2)
        try await f.client.send("HSET", f.keys.state(channel: f.channel), "last_seq", 1)
        let outcome = try await f.commitRun(await f.lock(), [(one, 1, .handled, StateUpdate(increment: ["count": 1])),
                                                              (two, 2, .handled, StateUpdate(increment: ["count": 1]))])
        #expect(outcome == .committed(lastSeq: 1, results: [.duplicate, .notReached]))
        #expect(try await f.state("count") == nil)
        #expect(try await f.pendingCount() == 1, "the second stays pending for a fresh claim")
    }

    @Test func aCounterThatAnEarlierMessageOfTheRunSetIsCheckedBeforeAnyWrite() async throws {
        let f = try Fixture()
        defer { f.client.close() }
        let one = try await f.pendingEntry(seq: 1), two = try await f.pendingEntry(seq: 2)
        let lock = await f.lock()
        await #expect { try await f.commitRun(lock, [(one, 1, .handled, StateUpdate(setFields: ["count": "many"])),
                                                      (two, 2, .handled, StateUpdate(increment: ["count": 1]))]) }
            throws: { ($0 as? RedisError)?.serverCode == "ERR" }
        #expect(try await f.state("count") == nil)
        #expect(try await f.state("last_seq") == nil)
        #expect(try await f.pendingCount() == 2)
        #expect(try await f.client.send("GET", lock.key).string == lock.token, "not released")
    }

    @Test func aStaleRunChangesNothing() async throws {
        let f = try Fixture()
        defer { f.client.close() }
        let one = try await f.pendingEntry(seq: 1), two = try await f.pendingEntry(seq: 2)
        let lock = await f.lock()
        try await f.client.send("HSET", f.keys.state(channel: f.channel), "fence", 1_000_000)
        let outcome = try await f.commitRun(lock, [(one, 1, .handled, StateUpdate(increment: ["count": 1])),
                                                    (two, 2, .handled, StateUpdate(increment: ["count": 1]))])
        #expect(outcome == .stale(recorded: 1_000_000))
        #expect(try await f.state("count") == nil)
        #expect(try await f.pendingCount() == 2)
    }

    // MARK: Several channels in one call

    /// Adds an entry of `channel` and delivers it, so it is pending.
    func pending(_ f: Fixture, channel: String, seq: Int64) async throws -> InboundMessage {
        _ = try? await f.client.send("XGROUP", "CREATE", f.stream, "g", "0", "MKSTREAM")
        let id = try #require(try await f.client.send("XADD", f.stream, "*", "channel_id", channel, "seq", seq).string)
        _ = try await f.client.send("XREADGROUP", "GROUP", "g", "w", "COUNT", 100, "STREAMS", f.stream, ">")
        return InboundMessage(stream: f.stream, id: id, channel: channel, seq: seq, fields: [])
    }

    func run(_ f: Fixture, _ message: InboundMessage) async -> (DistributedLock, RunCommit) {
        let lock = DistributedLock(client: f.client, key: f.keys.lock(channel: message.channel), ttl: .seconds(30))
        _ = await lock.acquire()
        let commit = RunCommit(items: [.init(message: message, mode: .handled, update: StateUpdate(increment: ["count": 1]))],
                               lockKey: lock.key, token: lock.token, fence: await lock.fence ?? 0, group: "g", keys: f.keys)
        return (lock, commit)
    }

    /// A run's updates go to Redis in as few calls as possible; the result must be the one of
    /// applying them one message at a time.
    @Test(arguments: [
        [StateUpdate(setFields: ["a": "1"], increment: ["n": 1, "z": 1], append: ["h1"], listCap: 3),
         StateUpdate(setFields: ["a": "2", "b": "x"], increment: ["n": 2, "z": -1], append: ["h2", "h3"], listCap: 3),
         StateUpdate(increment: ["n": 3], listCap: 3),
         StateUpdate(append: ["h4", "h5"], listCap: 3)],
        // A field both set and incremented, and appends with different caps: one by one.
        [StateUpdate(increment: ["n": 1], append: ["h1", "h2"], listCap: 5),
         StateUpdate(setFields: ["n": "5"], append: ["h3"], listCap: 2),
         StateUpdate(increment: ["n": 1], append: ["h4"])],
    ])
    func aRunsUpdatesEndAsIfAppliedOneByOne(updates: [StateUpdate]) async throws {
        let f = try Fixture()
        defer { f.client.close() }
        var run: [InboundMessage] = []
        for seq in 1...updates.count { run.append(try await pending(f, channel: "together", seq: Int64(seq))) }
        let (together, _) = await self.run(f, run[0])
        let commit = RunCommit(items: zip(run, updates).map { .init(message: $0, mode: .handled, update: $1) },
                               lockKey: together.key, token: together.token, fence: await together.fence ?? 0, group: "g", keys: f.keys)
        #expect(try await commit.run(on: f.client) == .committed(lastSeq: Int64(updates.count), results: updates.map { _ in .applied }))

        for (index, update) in updates.enumerated() {
            let message = try await pending(f, channel: "apart", seq: Int64(index + 1))
            let lock = DistributedLock(client: f.client, key: f.keys.lock(channel: "apart"), ttl: .seconds(30))
            _ = await lock.acquire()
            let single = RunCommit(items: [.init(message: message, mode: .handled, update: update)],
                                   lockKey: lock.key, token: lock.token, fence: await lock.fence ?? 0, group: "g", keys: f.keys)
            #expect(try await single.run(on: f.client) == .committed(lastSeq: Int64(index + 1), results: [.applied]))
        }
        func state(_ channel: String) async throws -> [String: String] {
            try await f.client.send("HGETALL", f.keys.state(channel: channel)).stringHash(from: "HGETALL")
                .filter { !["fence", "last_id"].contains($0.key) }
        }
        func history(_ channel: String) async throws -> [String] {
            try await f.client.send("LRANGE", f.keys.history(channel: channel), 0, -1).array?.compactMap(\.string) ?? []
        }
        #expect(try await state("together") == (try await state("apart")))
        #expect(try await history("together") == (try await history("apart")))
    }

    @Test func aBatchOfClaimsClaimsWhatIsFreeReadsItsStateAndLeavesTheTakenAlone() async throws {
        let f = try Fixture()
        defer { f.client.close() }
        try await f.client.send("HSET", f.keys.state(channel: "a"), "last_seq", 4, "count", 4)
        try await f.client.send("SADD", f.keys.deadSeqs(channel: "a"), 5, 6)
        try await f.client.send("SET", f.keys.lock(channel: "b"), "someone-else", "PX", 60_000)
        try await f.client.send("SET", f.keys.state(channel: "c"), "not a hash")
        func claim(_ channel: String, _ read: ChannelClaim.Read, token: String = "t-\(UUID().uuidString)") -> ChannelClaim {
            ChannelClaim(lock: f.keys.lock(channel: channel), token: token, channel: channel, keys: f.keys, read: read, hasSeq: true)
        }
        let a = claim("a", .state), b = claim("b", .lastSeq), c = claim("c", .lastSeq), d = claim("d", .lastSeq)
        let outcomes = try await ChannelClaim.claim([a, b, c, d], ttl: .seconds(30), on: f.client)

        guard case .claimed(let fence, let reads) = try outcomes[0].get() else { Issue.record("a not claimed: \(outcomes[0])"); return }
        let (state, lastSeq) = try MessageProcessor.decodeState(reads, needsState: true, hasSeq: true)
        #expect(state.fields == ["last_seq": "4", "count": "4"])
        #expect(lastSeq == 6, "dead seqs just above last_seq count as done")
        #expect(try await f.client.send("GET", f.keys.lock(channel: "a")).string == a.token)
        #expect(try await f.client.send("GET", f.keys.fence(channel: "a")).int == fence)

        guard case .contended(let pttl) = try outcomes[1].get() else { Issue.record("b claimed: \(outcomes[1])"); return }
        #expect(pttl > 0 && pttl <= 60_000)
        #expect(try await f.client.send("GET", f.keys.lock(channel: "b")).string == "someone-else")

        guard case .unreadable(_, let error) = try outcomes[2].get() else { Issue.record("c readable: \(outcomes[2])"); return }
        #expect(error.serverCode == "WRONGTYPE")
        #expect(try await f.client.send("GET", f.keys.lock(channel: "c")).string == c.token, "held: the caller releases it")

        guard case .claimed(_, let fresh) = try outcomes[3].get() else { Issue.record("d not claimed"); return }
        #expect(try MessageProcessor.decodeState(fresh, needsState: false, hasSeq: true).1 == 0, "a new channel")

        // A claim whose reply was lost is made again by its token, keeping its fence.
        let again = try await ChannelClaim.claim([a], ttl: .seconds(30), on: f.client)
        guard case .claimed(let same, _) = try again[0].get() else { Issue.record("a not claimed again"); return }
        #expect(same == fence)
    }

    @Test func aLockAdoptsABatchedClaimAndRenewsAndReleasesIt() async throws {
        let f = try Fixture()
        defer { f.client.close() }
        // A 6 s lease renewed every 2 s: a loaded machine cannot let it expire before the first renewal.
        let lock = DistributedLock(client: f.client, key: f.keys.lock(channel: "a"), ttl: .seconds(6), autoRenew: true, maxRenewals: 0)
        let sentAt = ContinuousClock.now
        let outcome = try await ChannelClaim.claim(
            [ChannelClaim(lock: lock.key, token: lock.token, channel: "a", keys: f.keys, read: .nothing, hasSeq: false)],
            ttl: .seconds(6), on: f.client)
        guard case .claimed(let fence, let reads) = try outcome[0].get() else { Issue.record("not claimed"); return }
        #expect(reads.isEmpty)
        #expect(await lock.adoptClaim(fence: fence, claimSentAt: sentAt))
        #expect(await !lock.adoptClaim(fence: fence, claimSentAt: sentAt), "already held")
        #expect(await lock.fence == fence)
        // The watchdog runs for an adopted claim as for the lock's own.
        try await waitUntil(timeout: .seconds(60)) { await lock.renewals >= 1 }
        #expect(await lock.isHeld)
        #expect(try await f.client.send("GET", lock.key).string == lock.token)
        await lock.release()
        #expect(try await f.client.send("EXISTS", lock.key) == .integer(0))
    }

    @Test func oneStaleChannelOfABatchedCommitLeavesTheOthersToApply() async throws {
        let f = try Fixture()
        defer { f.client.close() }
        let (_, first) = await run(f, try await pending(f, channel: "a", seq: 1))
        let (staleLock, stale) = await run(f, try await pending(f, channel: "b", seq: 1))
        let (_, lost) = await run(f, try await pending(f, channel: "c", seq: 1))
        let (_, wrongType) = await run(f, try await pending(f, channel: "d", seq: 1))
        let (_, last) = await run(f, try await pending(f, channel: "e", seq: 1))
        try await f.client.send("HSET", f.keys.state(channel: "b"), "fence", 1_000_000)
        try await f.client.send("SET", f.keys.lock(channel: "c"), "someone-else")
        try await f.client.send("SET", f.keys.state(channel: "d"), "not a hash")

        let outcomes = try await RunCommit.commit([first, stale, lost, wrongType, last], on: f.client)
        #expect(try outcomes[0].get() == .committed(lastSeq: 1, results: [.applied]))
        #expect(try outcomes[1].get() == .stale(recorded: 1_000_000))
        #expect(try outcomes[2].get() == .lost)
        #expect(throws: RedisError.self) { try outcomes[3].get() }
        #expect((try? outcomes[3].get()) == nil)
        if case .failure(let error) = outcomes[3] { #expect((error as? RedisError)?.serverCode == "WRONGTYPE") }
        #expect(try outcomes[4].get() == .committed(lastSeq: 1, results: [.applied]))

        for (channel, count) in [("a", "1"), ("e", "1")] {
            #expect(try await f.client.send("HGET", f.keys.state(channel: channel), "count").string == count)
            #expect(try await f.client.send("EXISTS", f.keys.lock(channel: channel)) == .integer(0), "released")
        }
        #expect(try await f.client.send("HGET", f.keys.state(channel: "b"), "count").isNull)
        #expect(try await f.client.send("GET", staleLock.key).string == staleLock.token, "a stale holder's lock is not released")
        #expect(try await f.client.send("GET", f.keys.lock(channel: "c")).string == "someone-else")
        #expect(try await f.pendingCount() == 3, "b, c and d stay pending")
    }

    @Test func aLuaErrorInOneChannelsCommitFailsThatChannelAloneAndSparesTheOthers() async throws {
        let f = try Fixture()
        defer { f.client.close() }
        let (_, first) = await run(f, try await pending(f, channel: "a", seq: 1))
        let (_, broken) = await run(f, try await pending(f, channel: "b", seq: 1))
        let (_, last) = await run(f, try await pending(f, channel: "c", seq: 1))
        // Not a number: comparing it with the run's fence is a Lua error, which no check foresees.
        try await f.client.send("HSET", f.keys.state(channel: "b"), "fence", "not a number")

        let outcomes = try await RunCommit.commit([first, broken, last], on: f.client)
        #expect(try outcomes[0].get() == .committed(lastSeq: 1, results: [.applied]))
        if case .failure(let error) = outcomes[1] { #expect((error as? RedisError)?.serverCode == "ERR") } else {
            Issue.record("b committed: \(outcomes[1])")
        }
        #expect(try outcomes[2].get() == .committed(lastSeq: 1, results: [.applied]))
        #expect(try await f.client.send("HGET", f.keys.state(channel: "b"), "count").isNull)
        #expect(try await f.pendingCount() == 1, "b stays pending")
    }

    @Test func aClaimOfALockOrFenceOfAnotherTypeIsRefusedAloneAndHoldsNothing() async throws {
        let f = try Fixture()
        defer { f.client.close() }
        try await f.client.send("HSET", f.keys.lock(channel: "b"), "not", "a string")
        try await f.client.send("SET", f.keys.fence(channel: "c"), "not a number")
        let claims = ["a", "b", "c", "d"].map {
            ChannelClaim(lock: f.keys.lock(channel: $0), token: "t-\($0)", channel: $0, keys: f.keys, read: .lastSeq, hasSeq: true)
        }
        let outcomes = try await ChannelClaim.claim(claims, ttl: .seconds(30), on: f.client)
        for (index, channel) in ["a", "d"].enumerated() {
            guard case .claimed = try outcomes[index * 3].get() else { Issue.record("\(channel) not claimed: \(outcomes[index * 3])"); continue }
            #expect(try await f.client.send("GET", f.keys.lock(channel: channel)).string == "t-\(channel)")
        }
        guard case .refused(let wrongType) = try outcomes[1].get() else { Issue.record("b not refused: \(outcomes[1])"); return }
        #expect(wrongType.serverCode == "WRONGTYPE")
        #expect(try await f.client.send("TYPE", f.keys.lock(channel: "b")).string == "hash", "left as it was")
        guard case .refused(let notANumber) = try outcomes[2].get() else { Issue.record("c not refused: \(outcomes[2])"); return }
        #expect(notANumber.serverCode == "ERR")
        #expect(try await f.client.send("EXISTS", f.keys.lock(channel: "c")) == .integer(0), "set before the fence failed, then let go")
    }

    @Test func aCommitAnnouncesTheChannelsNewLastSeqWithItsRelease() async throws {
        let f = try Fixture()
        defer { f.client.close() }
        let id = try await f.pendingEntry(seq: 1)
        let lock = await f.lock()
        let subscription = try await f.client.subscribe(shardChannel: LockKeys.releaseChannel(forLock: lock.key))
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
        for notACounter in ["007", "-0"] {
            try await f.client.send("HSET", f.keys.state(channel: f.channel), "count", notACounter)
            await #expect { try await f.client.send("HINCRBY", f.keys.state(channel: f.channel), "count", 1) } throws: { _ in true }
        }
        for notACounter in ["many", "1.5", "1e3", "0x10", "007", "00", "-0", "+1", "1234567890123456789"] {
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

    @Test func deadLetteringOverOrderKeysOfTheWrongKindWritesNothing() async throws {
        let f = try Fixture()
        defer { f.client.close() }
        let id = try await f.pendingEntry(seq: 1)
        let dl = DeadLetterer(client: f.client, group: "g", consumer: "w", keys: f.keys, logger: .init(label: "t"))
        func deadLetter() async throws -> Bool {
            try await dl.deadLetter(stream: f.stream, id: id, fields: [], reason: "test", detail: "", deliveries: 1, channel: f.channel, seq: 1)
        }
        let corruptions: [(key: String, command: RedisCommand)] = [
            (f.keys.state(channel: f.channel), RedisCommand("SET", f.keys.state(channel: f.channel), "not a hash")),
            (f.keys.state(channel: f.channel), RedisCommand("HSET", f.keys.state(channel: f.channel), "last_seq", "many")),
            (f.keys.deadSeqs(channel: f.channel), RedisCommand("SET", f.keys.deadSeqs(channel: f.channel), "not a set")),
            (f.keys.skippedSeqs(channel: f.channel), RedisCommand("SET", f.keys.skippedSeqs(channel: f.channel), "not a set")),
        ]
        for (key, command) in corruptions {
            try await f.client.send(command)
            await #expect(throws: RedisError.self) { try await deadLetter() }
            #expect(try await f.pendingCount() == 1, "not acknowledged")
            #expect(try await f.client.send("EXISTS", WorkerKeys.deadLetters(of: f.stream)) == .integer(0), "nothing written")
            try await f.client.send("DEL", key)
        }
        #expect(try await deadLetter())
        #expect(try await f.state("last_seq") == "1")
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

    @Test func aBatchStampsEachChannelsSeqsInOrderAcrossPartitions() async throws {
        let client = try TestRedis.client()
        defer { client.close() }
        let keys = WorkerKeys(prefix: TestRedis.uniqueKey("p"), partitions: 4)
        let stream = keys.prefix + ":stream"
        let producer = Producer(client: client, keys: keys)
        // A lone send first: the batch continues the channel's seqs.
        _ = try await producer.send(stream: stream, channel: "c0")
        let channels = (0..<6).map { "c\($0)" }
        let messages = (0..<600).map { OutgoingMessage(channel: channels[$0 % 6], fields: [StreamField("n", "\($0)")]) }
        let results = await producer.send(messages, stream: stream)
        #expect(results.count == messages.count)
        var next = Dictionary(uniqueKeysWithValues: channels.map { ($0, Int64($0 == "c0" ? 2 : 1)) })
        for (message, result) in zip(messages, results) {
            let entry = try result.get()
            #expect(entry.seq == next[message.channel], "\(message.channel)")
            next[message.channel]! += 1
            // In the channel's partition stream, with its fields after the channel and the seq.
            let stored = try await client.send("XRANGE", keys.stream(stream, channel: message.channel), entry.id, entry.id)
            #expect(stored.array?.first?.array?.last?.array?.compactMap(\.string)
                    == ["channel_id", message.channel, "seq", "\(entry.seq)", "n", message.fields[0].value.map { String(UnicodeScalar($0)) }.joined()])
        }
        // 100 messages of each channel, more than one call's worth per partition: the stream order is the seq order.
        for channel in channels {
            let entries = try await client.send("XRANGE", keys.stream(stream, channel: channel), "-", "+").array ?? []
            let seqs = entries.compactMap { entry -> Int64? in
                let fields = entry.array?.last?.array?.compactMap(\.string) ?? []
                guard fields.count >= 4, fields[1] == channel else { return nil }
                return Int64(fields[3])
            }
            #expect(seqs == Array(1...Int64(channel == "c0" ? 101 : 100)), "\(channel)")
        }
    }

    @Test func aBadCounterFailsItsPartitionsCallWithNothingWrittenAndSparesTheOthers() async throws {
        let client = try TestRedis.client()
        defer { client.close() }
        let keys = WorkerKeys(prefix: TestRedis.uniqueKey("p"), partitions: 8)
        let stream = keys.prefix + ":stream"
        let producer = Producer(client: client, keys: keys)
        let channels = (0..<40).map { "c\($0)" }
        let bad = channels[0], good = try #require(channels.first { keys.partition(of: $0) != keys.partition(of: bad) })
        let sameCall = channels.filter { $0 != bad && keys.partition(of: $0) == keys.partition(of: bad) }
        _ = try await client.send("SET", keys.seq(channel: bad), "12abc")
        // More than a call's worth of the bad partition: its later calls are not sent either.
        let messages = (0..<(2 * Producer.messagesPerCall)).map { OutgoingMessage(channel: channels[$0 % channels.count]) }
        let results = await producer.send(messages, stream: stream)
        for (message, result) in zip(messages, results) {
            if keys.partition(of: message.channel) == keys.partition(of: bad) {
                #expect(throws: RedisError.self) { try result.get() }
            } else {
                _ = try result.get()
            }
        }
        if case .failure(let error) = results[0] { #expect("\(error)".contains("not a seq"), "\(error)") }
        #expect(try await client.send("XLEN", keys.stream(stream, channel: bad)).int == 0, "nothing of the failed calls was written")
        for channel in sameCall { #expect(try await client.send("GET", keys.seq(channel: channel)).string == nil) }
        #expect(try await client.send("GET", keys.seq(channel: good)).string
                == "\(messages.filter { $0.channel == good }.count)")
    }

    @Test func aBatchThatWouldPassTwoToTheFiftyThreeMinusOneWritesNothing() async throws {
        let f = try Fixture()
        defer { f.client.close() }
        let producer = Producer(client: f.client, keys: f.keys)
        _ = try await f.client.send("SET", f.keys.seq(channel: "a"), String(InboundMessage.maxSeq - 1))
        let two = await producer.send([OutgoingMessage(channel: "b"), OutgoingMessage(channel: "a"), OutgoingMessage(channel: "a")], stream: f.stream)
        for result in two { #expect(throws: RedisError.self) { try result.get() } }
        #expect(try await f.client.send("EXISTS", f.stream).int == 0)
        #expect(try await f.client.send("GET", f.keys.seq(channel: "b")).string == nil)
        let one = await producer.send([OutgoingMessage(channel: "a")], stream: f.stream)
        #expect(try one[0].get().seq == InboundMessage.maxSeq)
        let last = try await f.client.send("XREVRANGE", f.stream, "+", "-", "COUNT", 1)
        #expect(last.array?.first?.array?.last?.array?.compactMap(\.string) == ["channel_id", "a", "seq", "9007199254740991"])
        #expect(try await f.client.send("GET", f.keys.seq(channel: "a")).string == "9007199254740991")
    }

    @Test func aBatchWhoseCounterIsNotAStringWritesNothingAndLeavesTheKeyAlone() async throws {
        let f = try Fixture()
        defer { f.client.close() }
        let producer = Producer(client: f.client, keys: f.keys)
        _ = try await f.client.send("HSET", f.keys.seq(channel: "h"), "f", "v")
        let results = await producer.send([OutgoingMessage(channel: "b"), OutgoingMessage(channel: "h")], stream: f.stream)
        for result in results {
            #expect { try result.get() } throws: { ($0 as? RedisError)?.serverCode == "WRONGTYPE" }
        }
        #expect(try await f.client.send("EXISTS", f.stream).int == 0)
        #expect(try await f.client.send("GET", f.keys.seq(channel: "b")).string == nil)
        #expect(try await f.client.send("HGET", f.keys.seq(channel: "h"), "f").string == "v")
    }

    // MARK: The seq contract's edges (2^53-1 is the largest seq; Lua holds numbers as doubles)

    @Test func theCommitScriptAppliesSeqTwoToTheFiftyThreeMinusOneExactly() async throws {
        let f = try Fixture()
        defer { f.client.close() }
        let max = InboundMessage.maxSeq
        _ = try await f.client.send("HSET", f.keys.state(channel: f.channel), "last_seq", String(max - 1))
        let id = try await f.pendingEntry(seq: max)
        let lock = await f.lock()
        let subscription = try await f.client.subscribe(shardChannel: LockKeys.releaseChannel(forLock: lock.key))
        defer { subscription.cancel() }
        #expect(try await f.commit(lock, id: id, seq: max) == .applied)
        #expect(try await f.state("last_seq") == "9007199254740991")
        // Printed in full (Lua's own number printing would say 9.007199254741e+15).
        #expect(await subscription.next(timeout: .seconds(10)) == .message(Array("\(lock.token) 9007199254740991".utf8)))
        // The next seq a double cannot tell apart from it is no duplicate to be dropped silently:
        // it is refused before anything is written.
        let above = try await f.pendingEntry(seq: nil)
        for seq in ["9007199254740992", "9007199254740993", "9223372036854775807", "0", "1.5", "1e3"] {
            let lock = await f.lock()
            var commit = RunCommit(
                items: [.init(message: InboundMessage(stream: f.stream, id: above, channel: f.channel, seq: nil, fields: []),
                              mode: .handled, update: StateUpdate(increment: ["count": 1]))],
                lockKey: lock.key, token: lock.token, fence: await lock.fence ?? 0, group: "g", keys: f.keys)
            commit.arguments[6] = seq
            await #expect(throws: RedisError.self, "seq \(seq)") { try await commit.run(on: f.client) }
            await lock.release()
        }
        #expect(try await f.state("last_seq") == "9007199254740991")
        #expect(try await f.state("count") == "1")
        #expect(try await f.pendingCount() == 1, "the refused entry is not acknowledged")
    }

    @Test func aWorkerDeadLettersEverySeqBeyondTheBoundAndAppliesTheBoundItself() async throws {
        let f = try Fixture()
        defer { f.client.close() }
        for (seq, expected) in [("9007199254740991", true), ("9007199254740992", false), ("9223372036854775807", false)] {
            let entry = StreamEntry(stream: f.stream, id: "1-0", fields: [StreamField("channel_id", "a"), StreamField("seq", seq)])
            let parsed = InboundMessage.parse(entry, channelField: "channel_id", maxEntryBytes: 1000)
            if case .success = parsed { #expect(expected, "seq \(seq)") } else { #expect(!expected, "seq \(seq)") }
        }
        // Dead-lettering an entry whose seq is outside the contract leaves the channel's order alone.
        let id = try await f.pendingEntry(seq: nil)
        let dl = DeadLetterer(client: f.client, group: "g", consumer: "w", keys: f.keys, logger: .init(label: "t"))
        _ = try await dl.deadLetter(stream: f.stream, id: id, fields: [StreamField("seq", "9223372036854775807")], reason: "invalid_seq",
                                    detail: "", deliveries: 1, channel: f.channel, seq: .max)
        #expect(try await f.state("last_seq") == nil)
        #expect(try await f.client.send("EXISTS", f.keys.deadSeqs(channel: f.channel)).int == 0)
    }

    @Test func theProducerStopsAtTwoToTheFiftyThreeMinusOne() async throws {
        let f = try Fixture()
        defer { f.client.close() }
        let producer = Producer(client: f.client, keys: f.keys)
        _ = try await f.client.send("SET", f.keys.seq(channel: "a"), String(InboundMessage.maxSeq - 1))
        #expect(try await producer.send(stream: f.stream, channel: "a").seq == InboundMessage.maxSeq)
        let last = try await f.client.send("XREVRANGE", f.stream, "+", "-", "COUNT", 1)
        #expect(last.array?.first?.array?.last?.array?.compactMap(\.string) == ["channel_id", "a", "seq", "9007199254740991"])
        await #expect(throws: RedisError.self) { try await producer.send(stream: f.stream, channel: "a") }
        #expect(try await f.client.send("GET", f.keys.seq(channel: "a")).string == "9007199254740991", "nothing was written")
        #expect(try await f.client.send("XLEN", f.stream).int == 1)
        _ = try await f.client.send("SET", f.keys.seq(channel: "b"), "12abc")
        await #expect(throws: RedisError.self) { try await producer.send(stream: f.stream, channel: "b") }
    }

    // MARK: Dead letters keep every field

    @Test func aDeadLetterOfFiftyThousandBinaryFieldsIsRequeuedByteForByte() async throws {
        let f = try Fixture()
        defer { f.client.close() }
        _ = try? await f.client.send("XGROUP", "CREATE", f.stream, "g", "0", "MKSTREAM")
        // Every byte value appears in names and values, NUL and CR LF included.
        var fields = [StreamField("channel_id", f.channel)]
        for i in 0..<50_000 {
            let name = Array("k\(i)".utf8) + [UInt8(i % 256), 0]
            let value: [UInt8] = [UInt8((i * 7) % 256), 13, 10, UInt8(255 - i % 256)]
            fields.append(StreamField(name: name, value: value))
        }
        var add = RedisCommand("XADD", f.stream, "*")
        for field in fields { add.append(field.name); add.append(field.value) }
        let id = try #require(try await f.client.send(add).string)
        let read = try await f.client.send("XREADGROUP", "GROUP", "g", "w", "COUNT", 1, "STREAMS", f.stream, ">")
        let delivered = try #require(try StreamReplies.readGroup(read).first?.entry.fields)
        #expect(delivered == fields)
        let dl = DeadLetterer(client: f.client, group: "g", consumer: "w", keys: f.keys, logger: .init(label: "t"))
        #expect(try await dl.deadLetter(stream: f.stream, id: id, fields: delivered, reason: "oversized", detail: "big",
                                        deliveries: 1, channel: f.channel, seq: nil))
        #expect(try await f.pendingCount() == 0)
        let parts = (fields.count + WorkerScripts.deadLetterFieldsPerPart - 1) / WorkerScripts.deadLetterFieldsPerPart
        #expect(try await f.client.send("XLEN", WorkerKeys.deadLetters(of: f.stream)).int == Int64(parts))
        // Reassembled from its parts, field for field.
        let dead = try await f.client.send("XRANGE", WorkerKeys.deadLetters(of: f.stream), "-", "+").array ?? []
        var restored: [StreamField] = []
        for entry in dead {
            let flat = entry.array?.last?.array?.compactMap(\.bytes) ?? []
            for i in stride(from: 0, to: flat.count - 1, by: 2) where flat[i].starts(with: Array("f:".utf8)) {
                restored.append(StreamField(name: Array(flat[i].dropFirst(2)), value: flat[i + 1]))
            }
        }
        #expect(restored == fields)
    }
}
