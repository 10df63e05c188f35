import Logging
import RedisClient
@testable import StreamWorker
import Synchronization
import TestSupport
import Testing

/// What a read delivered whose reply never arrived (its connection was dropped to interrupt it):
/// taken in from this consumer's pending list, against a real Redis.
@Suite struct UnreceivedEntriesTests {
    /// Only the lost read's entries are taken in, each once, and without another delivery counted:
    /// neither an older entry left pending on purpose (it waits for the reclaimer) nor one that is
    /// already queued here.
    @Test func whatALostReadDeliveredIsTakenInOnceWithoutCountingADelivery() async throws {
        let client = try TestRedis.client()
        defer { client.close() }
        let (keys, stream) = try await freshInput(client, prefix: "unreceived")
        var ids: [String] = []
        for (n, channel) in ["old", "held", "lost", "lost"].enumerated() {
            ids.append(try #require(try await client.send("XADD", stream, "*", "channel_id", channel, "seq", "\(n + 1)").string))
        }
        // A read that arrived: the first entry, which then failed and was left pending on purpose.
        _ = try await client.send("XREADGROUP", "GROUP", "g", "solo", "COUNT", 1, "STREAMS", stream, ">")
        let start = ContinuousClock.now
        // A read whose reply was lost: the other three.
        _ = try await client.send("XREADGROUP", "GROUP", "g", "solo", "COUNT", 10, "STREAMS", stream, ">")

        let started = Mutex<[String]>([])
        let gate = Gate()
        let dispatcher = ChannelDispatcher(concurrency: 4, maxQueued: 100) { run, _ in
            started.withLock { $0 += run.map(\.message.id) }
            if run[0].message.channel == "held" { await gate.wait() }
            return .done
        }
        defer { gate.open() }
        // The second entry reached this worker another way (a reclaim), and is still running.
        await dispatcher.submit(InboundMessage(stream: stream, id: ids[1], channel: "held", seq: 2, fields: []))
        var settings = WorkerConfiguration.defaults
        settings.streams = [stream]
        settings.group = "g"
        settings.consumer = "solo"
        settings.keyPrefix = keys.prefix
        let logger = Logger(label: "test")
        let intake = EntryIntake(
            client: client, settings: settings, dispatcher: dispatcher,
            deadLetterer: DeadLetterer(client: client, group: "g", consumer: "solo", keys: keys, logger: logger), logger: logger)

        try await intake.acceptUnreceived(streams: [stream], since: start, after: [stream: ids[0]])
        try await waitUntil { started.withLock { $0.count } >= 3 }
        gate.open()
        #expect(await dispatcher.waitUntilDrained(timeout: .seconds(30)))
        #expect(started.withLock { $0 } == [ids[1], ids[2], ids[3]], "the lost read's entries once each, nothing older")
        let rows = try StreamReplies.pending(try await client.send("XPENDING", stream, "g", "-", "+", 10))
        #expect(rows.map(\.id) == ids, "taking in acknowledges nothing; the commit would")
        #expect(rows.map(\.deliveries) == [1, 1, 1, 1], "no delivery counted by taking them in")
        #expect(try await client.send("XLEN", WorkerKeys.deadLetters(of: stream)).int == 0)
    }
}
