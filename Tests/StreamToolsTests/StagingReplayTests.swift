import RedisClient
import StreamTools
import StreamWorker
import TestSupport
import Testing

/// Replaying into a namespace that already has state: applied after it (restamped) or refused,
/// never silently all duplicates. Against a real Redis.
@Suite struct StagingReplayTests {
    static func entries(channel: String, seqs: ClosedRange<Int>) -> [ExportedEntry] {
        seqs.map { ExportedEntry(id: "\(1_700_000_000_000 + $0)-0", fields: [
            StreamField("channel_id", channel), StreamField("seq", String($0)), StreamField("text", "m\($0)"),
        ]) }
    }

    static func run(_ importer: StreamImporter, _ entries: [ExportedEntry]) async throws -> ImportSummary {
        var run = ReplayRun(importer: importer, pacer: try Pacer(), batchSize: 2)
        try await run.feed(entries)
        return try await run.finish()
    }

    @Test func restampingAppliesAfterTheExistingStateInOrder() async throws {
        let client = try TestRedis.client()
        defer { client.close() }
        let keys = WorkerKeys(prefix: TestRedis.uniqueKey("staging"))
        let stream = keys.prefix + ":stream:inbound"
        // Staging has already applied seq 7 of channel a; its counter is behind (an earlier kept-seq import).
        try await client.send("HSET", keys.state(channel: "a"), "last_seq", 7, "count", 7)
        try await client.send("SET", keys.seq(channel: "a"), 5)
        let importer = StreamImporter(client: client, stream: stream, mode: .keep, dryRun: false,
                                      target: ReplayTarget(keys: keys, seqMode: .restamp))
        let summary = try await Self.run(importer, Self.entries(channel: "a", seqs: 1...3))
        #expect(summary.added == 3)
        let added = try await client.send("XRANGE", stream, "-", "+").array ?? []
        let seqs = added.compactMap { $0.array?[1].array?.compactMap(\.string) }.map { $0[3] }
        #expect(seqs == ["8", "9", "10"])
        #expect(added.first?.array?[0].string == "1700000000001-0", "ids are kept")
        #expect(try await client.send("GET", keys.seq(channel: "a")).string == "10")

        // The same replay again: every id is present, and no seq is used up.
        let again = try await Self.run(importer, Self.entries(channel: "a", seqs: 1...3))
        #expect(again.alreadyPresent == 3)
        #expect(try await client.send("GET", keys.seq(channel: "a")).string == "10")
    }

    @Test func keptSeqsOntoStateThatHasThemAreRefusedBeforeAnythingIsWritten() async throws {
        let client = try TestRedis.client()
        defer { client.close() }
        let keys = WorkerKeys(prefix: TestRedis.uniqueKey("staging"))
        let stream = keys.prefix + ":stream:inbound"
        let importer = StreamImporter(client: client, stream: stream, mode: .new, dryRun: false,
                                      target: ReplayTarget(keys: keys, seqMode: .keep))
        var plan = SeqPlan()
        var last: [String: StreamID] = [:]
        try await importer.notePlan(Self.entries(channel: "a", seqs: 1...4), into: &plan, predictedLastIDs: &last)
        #expect(try await importer.conflicts(plan).isEmpty, "a fresh namespace takes them")
        _ = try await Self.run(importer, Self.entries(channel: "a", seqs: 1...4))
        try await importer.raiseCounters(plan.channels.mapValues(\.last))

        // Replayed once more with new ids: the worker would drop all four as duplicates.
        var second = SeqPlan()
        try await importer.notePlan(Self.entries(channel: "a", seqs: 1...4), into: &second, predictedLastIDs: &last)
        let conflicts = try await importer.conflicts(second)
        #expect(conflicts.map(\.kind) == [.duplicates])
        #expect(conflicts.first?.target == 4)
        #expect(try await client.send("XLEN", stream).int == 4)
    }

    @Test func keptIdsAlreadyPresentAreNotCountedAsConflicts() async throws {
        let client = try TestRedis.client()
        defer { client.close() }
        let keys = WorkerKeys(prefix: TestRedis.uniqueKey("staging"))
        let importer = StreamImporter(client: client, stream: keys.prefix + ":stream:inbound", mode: .keep, dryRun: false,
                                      target: ReplayTarget(keys: keys, seqMode: .keep))
        _ = try await Self.run(importer, Self.entries(channel: "a", seqs: 1...3))
        try await importer.raiseCounters(["a": 3])
        var plan = SeqPlan()
        var last: [String: StreamID] = [:]
        try await importer.notePlan(Self.entries(channel: "a", seqs: 1...3), into: &plan, predictedLastIDs: &last)
        #expect(plan.channels.isEmpty)
        #expect(try await importer.conflicts(plan).isEmpty)
    }
}
