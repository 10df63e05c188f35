import DistributedLocking
import Foundation
import Logging
import RedisClient
import StreamTools
import StreamWorker
import Synchronization
import TestSupport
import Testing

/// Dead letters made by the worker itself, then listed and requeued.
@Suite struct DeadLetterQueueTests {
    /// Fails messages marked `poison` until healed, otherwise records them like the history handler.
    struct PoisonHandler: MessageHandler {
        struct Poisoned: Error {}
        let healing: Healing
        var needsState: Bool { false }

        func handle(_ message: InboundMessage, state: ChannelState) async throws -> StateUpdate {
            if !healing.flag.load(ordering: .relaxed), message.fields.contains(StreamField("poison", "yes")) { throw Poisoned() }
            return try await HistoryHandler(historyMax: 100).handle(message, state: state)
        }
    }

    final class Healing: Sendable {
        let flag = Atomic<Bool>(false)
    }

    @Test func aRequeuedMessageKeepsItsFieldsRecordsTheRequeueAndIsAppliedByTheWorker() async throws {
        let client = try TestRedis.client()
        defer { client.close() }
        let keys = WorkerKeys(prefix: TestRedis.uniqueKey("dlq"))
        let stream = keys.prefix + ":in"
        var configuration = WorkerConfiguration.defaults
        configuration.partitions = 1
        configuration.streams = [stream]
        configuration.group = "g"
        configuration.consumer = "solo"
        configuration.keyPrefix = keys.prefix
        configuration.lockTTL = .milliseconds(500)
        configuration.claimIdle = .seconds(1)
        configuration.blockTime = .milliseconds(100)
        configuration.maxDeliveries = 2
        _ = try await client.send("XGROUP", "CREATE", stream, "g", "0", "MKSTREAM")
        let producer = Producer(client: client, keys: keys)
        try await producer.send(stream: stream, channel: "c", fields: [StreamField("text", "first")])
        let poison = try await producer.send(stream: stream, channel: "c", fields: [
            StreamField("text", "second"), StreamField("poison", "yes"), StreamField(name: Array("raw".utf8), value: [0xFF, 0x00, 0x7F]),
        ])
        try await producer.send(stream: stream, channel: "c", fields: [StreamField("text", "third")])

        let healing = Healing()
        let worker = StreamWorker(configuration: configuration, client: client, handler: PoisonHandler(healing: healing), logger: Logger(label: "test"))
        let running = Task { try await worker.run() }
        defer { running.cancel() }

        let queue = DeadLetterQueue(client: client, stream: stream, keys: keys)
        let inspector = Inspector(client: client, keys: keys)
        try await waitUntil(timeout: .seconds(60)) { try await inspector.channel("c").historyLength == 2 }
        let letters = try await queue.list()
        try #require(letters.count == 1)
        let letter = letters[0]
        #expect(letter.originalID == poison.id)
        #expect(letter.reason == "max_deliveries")
        #expect(letter.fields == [
            StreamField("channel_id", "c"), StreamField("seq", "2"), StreamField("text", "second"), StreamField("poison", "yes"),
            StreamField(name: Array("raw".utf8), value: [0xFF, 0x00, 0x7F]),
        ])
        #expect(try await inspector.channel("c").lastSeq == 3)

        healing.flag.store(true, ordering: .relaxed)
        let outcome = try await queue.requeue(letter, restampSeq: true, dryRun: false)
        guard case .requeued(_, let newID, let newSeq) = outcome else { Issue.record("not requeued: \(outcome)"); return }
        #expect(newSeq == 4)

        // The new entry: the original fields in order (seq restamped), then the record of the requeue.
        #expect(try await Self.fields(client, stream, newID) == [
            StreamField("channel_id", "c"), StreamField("seq", "4"), StreamField("text", "second"), StreamField("poison", "yes"),
            StreamField(name: Array("raw".utf8), value: [0xFF, 0x00, 0x7F]),
            StreamField("sg_requeued_from", letter.id), StreamField("sg_requeues", "1"), StreamField("sg_original_seq", "2"),
        ])
        // The worker applies it: the dead-lettered seq 2 already counts as done, seq 4 does not.
        try await waitUntil(timeout: .seconds(60)) { try await inspector.channel("c").historyLength == 3 }
        let channel = try await inspector.channel("c", historyTail: 1)
        #expect(channel.lastSeq == 4)
        let newest = try JSONParser.parse(channel.history.first ?? "")
        #expect(newest["id"] == .string(newID))
        #expect(newest["fields"]?["sg_requeued_from"] == .string(letter.id))
        #expect(newest["fields"]?["raw"] == .string("b64:" + Data([0xFF, 0x00, 0x7F]).base64EncodedString()))

        // The dead letter is gone, the move is logged, and a second requeue does nothing.
        #expect(try await queue.count() == 0)
        let log = try await client.send("XRANGE", queue.requeueLog, "-", "+").array ?? []
        #expect(log.count == 1)
        let record = (log.first?.array?[1].array ?? []).compactMap(\.string)
        #expect(record == ["dead_id", letter.id, "original_id", poison.id, "new_id", newID, "reason", "max_deliveries",
                           "original_seq", "2", "new_seq", "4", "time_ms", record.last ?? ""])
        #expect(try await queue.requeue(letter, restampSeq: true, dryRun: false) == .missing(deadID: letter.id))
        #expect(try await client.send("XLEN", stream).int == 4)
    }

    @Test func aDryRunRequeueShowsTheEntryAndWritesNothing() async throws {
        let client = try TestRedis.client()
        defer { client.close() }
        let keys = WorkerKeys(prefix: TestRedis.uniqueKey("dlq"))
        let stream = keys.prefix + ":in"
        let queue = DeadLetterQueue(client: client, stream: stream, keys: keys)
        try await Self.deadLetter(client, keys: keys, stream: stream, fields: [StreamField("channel_id", "c"), StreamField("seq", "1"), StreamField("text", "x")], reason: "oversized")
        let letter = try #require(try await queue.list().first)
        let before = try await client.send("XRANGE", queue.deadStream, "-", "+")

        let outcome = try await queue.requeue(letter, restampSeq: true, dryRun: true)
        guard case .wouldRequeue(_, let fields, let restamped) = outcome else { Issue.record("\(outcome)"); return }
        #expect(restamped)
        #expect(fields.prefix(3) == [StreamField("channel_id", "c"), StreamField("seq", "1"), StreamField("text", "x")])
        #expect(try await client.send("XRANGE", queue.deadStream, "-", "+") == before)
        #expect(try await client.send("XLEN", stream).int == 0)
        #expect(try await client.send("EXISTS", queue.requeueLog, keys.seq(channel: "c")).int == 0)
    }

    @Test func listingFiltersByReasonAndReasonsAreCountedMostCommonFirst() async throws {
        let client = try TestRedis.client()
        defer { client.close() }
        let keys = WorkerKeys(prefix: TestRedis.uniqueKey("dlq"))
        let stream = keys.prefix + ":in"
        for reason in ["oversized", "invalid_seq", "oversized", "max_deliveries", "oversized"] {
            try await Self.deadLetter(client, keys: keys, stream: stream, fields: [StreamField("channel_id", "c"), StreamField("r", reason)], reason: reason)
        }
        let queue = DeadLetterQueue(client: client, stream: stream, keys: keys)
        #expect(try await queue.list(reason: "oversized").count == 3)
        #expect(try await queue.list(reason: "oversized", limit: 2).count == 2)
        #expect(try await queue.list(reason: "missing_channel").isEmpty)
        let reasons = try await queue.reasons()
        #expect(reasons.top(1).first?.reason == "oversized")
        #expect(reasons.total == 5)
        #expect(try await queue.reasons(sample: 2).total == 2)
        await #expect(throws: DeadLetterError.self) { try await queue.show(id: "not-an-id") }
        #expect(try await queue.show(id: "1-1") == nil)
    }

    @Test func aDeadLetterOfFiftyThousandBinaryFieldsIsListedWholeAndRequeuedByteForByte() async throws {
        let client = try TestRedis.client()
        defer { client.close() }
        let keys = WorkerKeys(prefix: TestRedis.uniqueKey("dlq"))
        let stream = keys.prefix + ":in"
        var original = [StreamField("channel_id", "c"), StreamField("seq", "7")]
        for i in 0..<50_000 {
            original.append(StreamField(name: Array("k\(i)".utf8) + [0, UInt8(i % 256)], value: [UInt8(i % 256), 13, 10, 0xFF, 0]))
        }
        // A small one after it: the big one's parts must not swallow it.
        try await Self.deadLetter(client, keys: keys, stream: stream, fields: original, reason: "oversized")
        try await Self.deadLetter(client, keys: keys, stream: stream, fields: [StreamField("channel_id", "d")], reason: "max_deliveries")
        let queue = DeadLetterQueue(client: client, stream: stream, keys: keys)
        let letters = try await queue.list()
        try #require(letters.count == 2)
        #expect(letters[0].fields == original)
        #expect(letters[0].parts > 1 && letters[0].isComplete)
        #expect(letters[1].fields == [StreamField("channel_id", "d")])
        #expect(try await queue.show(id: letters[0].id) == letters[0])
        #expect(try await queue.reasons().total == 2, "continuation entries are no dead letters of their own")

        guard case .requeued(_, let newID, nil) = try await queue.requeue(letters[0], restampSeq: false, dryRun: false) else {
            Issue.record("not requeued")
            return
        }
        let requeued = try #require(try await Self.fields(client, stream, newID))
        #expect(Array(requeued.prefix(original.count)) == original, "the original fields, byte for byte and in order")
        #expect(Array(requeued.dropFirst(original.count)) == [StreamField("sg_requeued_from", letters[0].id), StreamField("sg_requeues", "1")])
        // Every part left the dead-letter stream with it; the small one stays.
        #expect(try await queue.list().map(\.id) == [letters[1].id])
        #expect(try await client.send("XLEN", queue.requeueLog).int == 1)
        #expect(try await queue.requeue(letters[0], restampSeq: false, dryRun: false) == .missing(deadID: letters[0].id))
    }

    static func fields(_ client: RedisClient, _ stream: String, _ id: String) async throws -> [StreamField]? {
        var found: [StreamField]?
        try await StreamRangeReader(client: client, stream: stream).forEachPage(EntryRange(start: id, end: id, limit: 1)) { found = $0.first?.fields }
        return found
    }

    /// Dead-letters one entry through the worker's own script.
    static func deadLetter(_ client: RedisClient, keys: WorkerKeys, stream: String, fields: [StreamField], reason: String) async throws {
        _ = try? await client.send("XGROUP", "CREATE", stream, "g", "0", "MKSTREAM")
        var add = RedisCommand("XADD", stream, "*")
        for field in fields { add.append(field.name); add.append(field.value) }
        let id = try await client.send(add).string ?? ""
        _ = try await client.send("XREADGROUP", "GROUP", "g", "w", "COUNT", 1, "STREAMS", stream, ">")
        var arguments: [any RedisArgumentConvertible] = ["g", id, reason, "1", "w", "1000", "", "test"]
        for field in fields { arguments += [field.name, field.value] }
        let moved = try await client.evaluate(WorkerScripts.deadLetter, keys: [stream, WorkerKeys.deadLetters(of: stream), stream, stream, stream], arguments: arguments)
        #expect(moved.int == 1)
        try await client.send("XDEL", stream, id)
    }
}
