import Foundation
import Logging
import RedisClient
import StreamTools
import StreamWorker
import TestSupport
import Testing

/// `sgctl verify`'s reader and verdict against a real Redis and a real worker; each failure is made on purpose.
@Suite struct VerifierTests {
    struct Processed {
        let client: RedisClient
        let keys: WorkerKeys
        let stream: String

        func verify(historyMax: Int = 100) async throws -> VerifyReport {
            try await Verifier(client: client, keys: keys, stream: stream, historyMax: historyMax).run()
        }

        func historyEntry(channel: String, seq: Int64) async throws -> [UInt8] {
            let items = try await client.send("LRANGE", keys.history(channel: channel), 0, -1).array ?? []
            return try #require(items.compactMap(\.bytes).first { String(decoding: $0, as: UTF8.self).contains("\"seq\":\(seq)}") })
        }
    }

    /// Produces `perChannel` messages on each of `channels` channels, lets `before` tamper with the
    /// stream, and runs a worker until every channel's state reached `expectApplied`.
    static func processed(channels: Int = 3, perChannel: Int = 6, historyMax: Int = 100, gapTimeout: Duration = .seconds(30),
                          before: (RedisClient, String, [[String]]) async throws -> Void = { _, _, _ in },
                          expectLastSeq: Int? = nil) async throws -> Processed {
        let client = try TestRedis.client()
        let keys = WorkerKeys(prefix: TestRedis.uniqueKey("verify"))
        let stream = keys.prefix + ":in"
        let producer = Producer(client: client, keys: keys)
        var ids = Array(repeating: [String](), count: channels)
        for _ in 0..<perChannel {
            for c in 0..<channels { ids[c].append(try await producer.send(stream: stream, channel: "c\(c)", fields: [StreamField("text", "x")]).id) }
        }
        try await before(client, stream, ids)
        var configuration = WorkerConfiguration.defaults
        configuration.partitions = keys.partitions
        configuration.streams = [stream]
        configuration.group = "g"
        configuration.consumer = "verifier"
        configuration.keyPrefix = keys.prefix
        configuration.blockTime = .milliseconds(100)
        configuration.historyMax = historyMax
        configuration.gapTimeout = gapTimeout
        let worker = StreamWorker(configuration: configuration, client: client, logger: Logger(label: "test"))
        let running = Task { try await worker.run() }
        defer { running.cancel() }
        let last = expectLastSeq ?? perChannel
        try await waitUntil(timeout: .seconds(60)) {
            let replies = try await client.pipeline((0..<channels).map { RedisCommand("HGET", keys.state(channel: "c\($0)"), "last_seq") })
            return try replies.allSatisfy { try Int($0.get().string ?? "") == last }
        }
        return Processed(client: client, keys: keys, stream: stream)
    }

    @Test func aCleanRunPassesAndATrimmedHistoryIsNoGap() async throws {
        let run = try await Self.processed(perChannel: 12, historyMax: 5)
        defer { run.client.close() }
        let report = try await run.verify(historyMax: 5)
        #expect(report.ok, "\(report.text(keyPrefix: run.keys.prefix, stream: run.stream))")
        #expect(report.channels.count == 3)
        #expect(report.produced == 36)
        #expect(report.trimmed == 3)
    }

    @Test func deletingAnAppliedHistoryEntryFailsAsLost() async throws {
        let run = try await Self.processed()
        defer { run.client.close() }
        try await run.client.send("LREM", run.keys.history(channel: "c1"), 1, run.historyEntry(channel: "c1", seq: 3))
        let report = try await run.verify()
        #expect(!report.ok)
        #expect(report.lost == 1)
        #expect(report.duplicated == 0)
        #expect(report.channels.first { $0.channel == "c1" }?.lostExamples == [3])
    }

    @Test func aSkippedSeqFailsAsLost() async throws {
        // The entry with seq 3 disappears before it is processed: the worker waits out the gap
        // and moves on (skipped_seqs); verify must not pass that.
        let run = try await Self.processed(channels: 1, gapTimeout: .milliseconds(300)) { client, stream, ids in
            try await client.send("XDEL", stream, ids[0][2])
        }
        defer { run.client.close() }
        #expect(try await run.client.send("HGET", run.keys.state(channel: "c0"), "skipped_seqs").string == "1")
        let report = try await run.verify()
        #expect(!report.ok)
        #expect(report.lost == 1)
    }

    @Test func applyingOneTwiceFailsAsADuplicate() async throws {
        let run = try await Self.processed()
        defer { run.client.close() }
        // What a double application leaves: the entry once more in the history, count one higher.
        let entry = try await run.historyEntry(channel: "c2", seq: 4)
        _ = try await run.client.pipeline([
            RedisCommand("RPUSH", run.keys.history(channel: "c2"), entry),
            RedisCommand("HINCRBY", run.keys.state(channel: "c2"), "count", 1),
        ])
        let report = try await run.verify()
        #expect(!report.ok)
        #expect(report.duplicated == 1)
        #expect(report.lost == 0)
    }

    @Test func producedButUnprocessedFailsAndNothingAtAllFails() async throws {
        let client = try TestRedis.client()
        defer { client.close() }
        let keys = WorkerKeys(prefix: TestRedis.uniqueKey("verify"))
        let empty = try await Verifier(client: client, keys: keys, stream: keys.prefix + ":in").run()
        #expect(!empty.ok)
        #expect(empty.nothingToVerify)
        let producer = Producer(client: client, keys: keys)
        for _ in 0..<4 { try await producer.send(stream: keys.prefix + ":in", channel: "c", fields: [StreamField("a", "b")]) }
        let unprocessed = try await Verifier(client: client, keys: keys, stream: keys.prefix + ":in").run()
        #expect(!unprocessed.ok)
        #expect(unprocessed.notApplied == 4)
    }

    @Test func channelsOfAnotherNamespaceAreNotMixedIn() async throws {
        let run = try await Self.processed(channels: 1)
        defer { run.client.close() }
        // A staging namespace under this prefix holds a broken channel; production stays clean.
        let staging = WorkerKeys(prefix: run.keys.prefix + ":staging")
        try await run.client.send("SET", staging.seq(channel: "c0"), 99)
        #expect(try await run.verify().ok)
        #expect(try await Verifier(client: run.client, keys: staging, stream: nil).run().ok == false)
    }
}
