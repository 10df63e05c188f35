import Foundation
import RedisClient
@testable import StreamWorker
import Synchronization
import Testing

@Suite struct MessageTests {
    func entry(_ fields: [(String, String)]) -> StreamEntry {
        StreamEntry(stream: "s", id: "1-0", fields: fields.map { StreamField($0.0, $0.1) })
    }

    @Test func aValidEntryKeepsItsOtherFieldsUntouched() throws {
        let m = try InboundMessage.parse(entry([("channel_id", "42"), ("seq", "7"), ("text", "hi")]), channelField: "channel_id", maxEntryBytes: 1000).get()
        #expect(m.channel == "42" && m.seq == 7)
        #expect(m.fields == [StreamField("text", "hi")])
    }

    @Test func theChannelFieldNameIsConfigurable() throws {
        let m = try InboundMessage.parse(entry([("room", "a")]), channelField: "room", maxEntryBytes: 1000).get()
        #expect(m.channel == "a" && m.seq == nil)
    }

    @Test func everyKindOfBadInputHasItsReason() {
        func reason(_ fields: [(String, String)], max: Int = 1000) -> String? {
            if case .failure(let bad) = InboundMessage.parse(entry(fields), channelField: "channel_id", maxEntryBytes: max) { return bad.reason }
            return nil
        }
        #expect(reason([("text", "x")]) == "missing_channel")
        #expect(reason([("channel_id", "")]) == "empty_channel")
        #expect(reason([("channel_id", String(repeating: "c", count: 257))]) == "channel_too_long")
        #expect(reason([("channel_id", "a\nb")]) == "channel_control_characters")
        #expect(reason([("channel_id", "a"), ("seq", "x1")]) == "invalid_seq")
        #expect(reason([("channel_id", "a"), ("seq", "-3")]) == "invalid_seq")
        #expect(reason([("channel_id", "a"), ("seq", "007")]) == "invalid_seq")
        #expect(reason([("channel_id", "a"), ("body", String(repeating: "x", count: 2000))]) == "oversized")
        #expect(reason([("channel_id", String(repeating: "c", count: 256))]) == nil)
    }

    @Test func seqIsAPositiveIntegerUpToTwoToTheFiftyThreeMinusOne() throws {
        func parse(_ seq: String) -> Result<InboundMessage, BadInput> {
            InboundMessage.parse(entry([("channel_id", "a"), ("seq", seq)]), channelField: "channel_id", maxEntryBytes: 1000)
        }
        #expect(try parse("9007199254740991").get().seq == 9_007_199_254_740_991)
        #expect(try parse("1").get().seq == 1)
        for bad in ["9007199254740992", "9007199254740993", "9223372036854775807", "9223372036854775808", "0", "+5", "1e3", ""] {
            guard case .failure(let error) = parse(bad) else { Issue.record("seq '\(bad)' was accepted"); continue }
            #expect(error.reason == "invalid_seq")
            #expect(error.description.contains("2^53-1"))
        }
    }

    @Test func aRepeatedChannelOrSeqFieldIsRefusedWithItsOwnReason() {
        func reason(_ fields: [(String, String)]) -> String? {
            if case .failure(let bad) = InboundMessage.parse(entry(fields), channelField: "channel_id", maxEntryBytes: 1000) { return bad.reason }
            return nil
        }
        #expect(reason([("channel_id", "a"), ("channel_id", "b")]) == "repeated_channel")
        #expect(reason([("channel_id", "a"), ("channel_id", "a")]) == "repeated_channel", "even with the same value")
        #expect(reason([("channel_id", "a"), ("seq", "1"), ("seq", "2")]) == "repeated_seq")
        #expect(reason([("channel_id", "a"), ("seq", "1"), ("text", "seq")]) == nil, "a value named seq is no field")
    }

    @Test func theOrderRuleCannotOverflowOnACorruptLastSeq() throws {
        #expect(SequenceDecision.decide(seq: 5, lastSeq: .max) == .duplicate(lastSeq: .max))
        #expect(SequenceDecision.decide(seq: .max, lastSeq: .max - 1) == .apply)
        let results: [Result<RESPValue, RedisError>] = [.success(.bulk(Array(String(Int64.max).utf8))), .success(.array([.integer(1)]))]
        #expect(try MessageProcessor.decodeState(results, needsState: false, hasSeq: true).1 == .max)
    }

    @Test func aChannelIdThatIsNotUTF8IsRejected() {
        let bad = StreamEntry(stream: "s", id: "1-0", fields: [StreamField(name: Array("channel_id".utf8), value: [0xFF, 0xFE])])
        guard case .failure(.channelNotUTF8) = InboundMessage.parse(bad, channelField: "channel_id", maxEntryBytes: 100) else {
            Issue.record("expected channelNotUTF8")
            return
        }
    }

    @Test func sequencingAppliesOnlyTheNextSeq() {
        #expect(SequenceDecision.decide(seq: 5, lastSeq: 4) == .apply)
        #expect(SequenceDecision.decide(seq: 4, lastSeq: 4) == .duplicate(lastSeq: 4))
        #expect(SequenceDecision.decide(seq: 1, lastSeq: 4) == .duplicate(lastSeq: 4))
        #expect(SequenceDecision.decide(seq: 7, lastSeq: 4) == .gap(lastSeq: 4))
    }

    @Test func historyEntriesAreJSONWithBinarySafeFields() throws {
        let message = InboundMessage(stream: "s", id: "5-1", channel: "c", seq: 3,
                                     fields: [StreamField("text", "hi"), StreamField(name: Array("bin".utf8), value: [0xFF, 0x00])])
        let json = try JSONSerialization.jsonObject(with: Data(HistoryHandler.historyEntry(message).utf8)) as? [String: Any]
        #expect(json?["id"] as? String == "5-1")
        #expect(json?["seq"] as? Int == 3)
        let fields = json?["fields"] as? [String: String]
        #expect(fields?["text"] == "hi")
        #expect(fields?["bin"] == "b64:" + Data([0xFF, 0x00]).base64EncodedString())
    }

    @Test func historyEntriesEscapeEveryStringAndKeepTheLastOfRepeatedFields() throws {
        let tricky = "quote\" back\\ nl\n tab\t bell\u{07} é 🙂"
        let message = InboundMessage(stream: "s", id: "7-0", channel: "c", seq: nil,
                                     fields: [StreamField("a\"b", tricky), StreamField("dup", "first"), StreamField("dup", "last")])
        let text = HistoryHandler.historyEntry(message)
        let json = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
        let fields = json?["fields"] as? [String: String]
        #expect(fields?["a\"b"] == tricky)
        #expect(fields?["dup"] == "last")
        #expect(json?["seq"] is NSNull)
        #expect(text.hasPrefix("{\"fields\":{\"a\\\"b\":"))
    }

    @Test func historyEntriesRecordTheLeaseTheyWereAppliedUnder() throws {
        let message = InboundMessage(stream: "s", id: "5-1", channel: "c", seq: 3, fields: [])
        let entry = LeaseContext.$fence.withValue(42) { HistoryHandler.historyEntry(message) }
        let json = try JSONSerialization.jsonObject(with: Data(entry.utf8)) as? [String: Any]
        #expect(json?["fence"] as? Int == 42)
        let outside = try JSONSerialization.jsonObject(with: Data(HistoryHandler.historyEntry(message).utf8)) as? [String: Any]
        #expect(outside?["fence"] == nil)
    }

    @Test func aParkedMessageWakesOnlyWhenAReleaseAnnouncesItsTurn() {
        func wakes(_ payload: String, _ seq: Int64) -> Bool { ChannelAdvance.announcesProgress(Array(payload.utf8), for: seq) }
        #expect(wakes("tok 4", 5))
        #expect(wakes("tok 9", 5))
        #expect(!wakes("tok 3", 5))
        #expect(!wakes("tok", 5))
        #expect(!wakes("tok x", 5))
    }

    @Test func deadSeqsJustAboveLastSeqCountAsDone() throws {
        let results: [Result<RESPValue, RedisError>] = [.success(.bulk(Array("4".utf8))), .success(.array([.bulk(Array("5".utf8)), .bulk(Array("6".utf8)), .bulk(Array("9".utf8))]))]
        let (_, last) = try MessageProcessor.decodeState(results, needsState: false, hasSeq: true)
        #expect(last == 6)
    }

    @Test func aClaimsStateReadThatFailedOrIsMalformedIsAnErrorNotAnEmptyState() {
        let failed: [Result<RESPValue, RedisError>] = [.failure(.unexpectedReply("x")), .success(.array([]))]
        #expect(throws: RedisError.self) { try MessageProcessor.decodeState(failed, needsState: false, hasSeq: true) }
        let notAHash: [Result<RESPValue, RedisError>] = [.success(.array([.bulk(Array("count".utf8))]))]
        #expect(throws: RedisError.self) { try MessageProcessor.decodeState(notAHash, needsState: true, hasSeq: false) }
        let notASeq: [Result<RESPValue, RedisError>] = [.success(.bulk(Array("4".utf8))), .success(.array([.bulk(Array("x".utf8))]))]
        #expect(throws: RedisError.self) { try MessageProcessor.decodeState(notASeq, needsState: false, hasSeq: true) }
        let missing: [Result<RESPValue, RedisError>] = [.success(.bulk(Array("4".utf8)))]
        #expect(throws: RedisError.self) { try MessageProcessor.decodeState(missing, needsState: false, hasSeq: true) }
        let nothingYet: [Result<RESPValue, RedisError>] = [.success(.null), .success(.array([]))]
        #expect((try? MessageProcessor.decodeState(nothingYet, needsState: false, hasSeq: true))?.1 == 0, "a new channel")
    }
}

@Suite struct DispatcherTests {
    @Test func aChannelsMessagesRunOneAtATimeInOrderWhileChannelsRunInParallel() async {
        let log = EventLog()
        let dispatcher = ChannelDispatcher(concurrency: 4, maxQueued: 1000) { run, _ in
            let job = run[0]
            log.enter(job.message.channel)
            try? await Task.sleep(for: .milliseconds(Int.random(in: 0...2)))
            log.exit(job.message.channel, job.message.seq!)
            return .done
        }
        for seq in 1...30 {
            for channel in ["a", "b", "c", "d", "e", "f"] {
                await dispatcher.submit(InboundMessage(stream: "s", id: "\(channel)-\(seq)", channel: channel, seq: Int64(seq), fields: []))
            }
        }
        #expect(await dispatcher.waitUntilDrained(timeout: .seconds(60)))
        #expect(log.maxInsideOneChannel == 1)
        #expect(log.maxChannelsAtOnce <= 4)
        #expect(log.maxChannelsAtOnce > 1)
        for channel in ["a", "b", "c", "d", "e", "f"] {
            #expect(log.order(channel) == Array(1...30).map(Int64.init))
        }
    }

    @Test func queuedMessagesOfAChannelAreHandedOverInRunsInOrder() async {
        let runs = RunLog()
        let gate = Gate()
        let dispatcher = ChannelDispatcher(concurrency: 1, maxQueued: 1000, runLimit: 4) { run, _ in
            if run[0].message.channel == "x" { await gate.wait() }
            runs.add(run.map { $0.message.seq ?? 0 })
            return .done
        }
        // "x" holds the only slot while ten messages of "a" queue up behind it.
        await dispatcher.submit(InboundMessage(stream: "s", id: "0-1", channel: "x", seq: nil, fields: []))
        for seq in 1...10 { await dispatcher.submit(InboundMessage(stream: "s", id: "\(seq)-0", channel: "a", seq: Int64(seq), fields: [])) }
        gate.open()
        #expect(await dispatcher.waitUntilDrained(timeout: .seconds(60)))
        #expect(runs.all.filter { $0 != [0] } == [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10]])
    }

    @Test func aRequeuedRunGoesBackInLineBehindTheWaitingChannels() async {
        let runs = RunLog()
        let gate = Gate()
        let dispatcher = ChannelDispatcher(concurrency: 1, maxQueued: 1000, runLimit: 3) { run, _ in
            if run[0].message.channel == "x" { await gate.wait() }
            runs.add(run.map { $0.message.seq ?? 0 })
            // Only the first message of each run of "a" gets its turn.
            return run[0].message.channel == "a" ? .requeue(finished: 1) : .done
        }
        await dispatcher.submit(InboundMessage(stream: "s", id: "0-1", channel: "x", seq: nil, fields: []))
        for seq in 1...3 { await dispatcher.submit(InboundMessage(stream: "s", id: "\(seq)-0", channel: "a", seq: Int64(seq), fields: [])) }
        await dispatcher.submit(InboundMessage(stream: "s", id: "9-0", channel: "b", seq: 100, fields: []))
        gate.open()
        #expect(await dispatcher.waitUntilDrained(timeout: .seconds(60)))
        #expect(runs.all == [[0], [1, 2, 3], [100], [2, 3], [3]])
    }

    /// A lost lease cancels the channel's task: the rest of its run goes on, in order, in a new task
    /// that is not cancelled, its head carrying the run's retries; later runs start their own count.
    @Test func aRestartedRunGoesOnInANewTaskWithItsRetries() async {
        struct Call: Equatable { var seqs: [Int64]; var task: ObjectIdentifier; var retries: Int; var cancelled: Bool }
        let calls = Mutex<[Call]>([])
        let dispatcher = ChannelDispatcher(concurrency: 1, maxQueued: 1000, runLimit: 2) { run, task in
            calls.withLock {
                $0.append(Call(seqs: run.map { $0.message.seq ?? 0 }, task: ObjectIdentifier(task), retries: run[0].runRetries,
                               cancelled: Task.isCancelled))
            }
            guard run[0].message.seq == 1 else { return .done }
            task.cancel()
            return .restart(finished: 1, retries: 2)
        }
        await dispatcher.submit((1...4).map { InboundMessage(stream: "s", id: "\($0)-0", channel: "a", seq: Int64($0), fields: []) })
        #expect(await dispatcher.waitUntilDrained(timeout: .seconds(60)))
        let all = calls.withLock { $0 }
        #expect(all.map(\.seqs) == [[1, 2], [2, 3], [4]])
        #expect(all.map(\.retries) == [0, 2, 0])
        #expect(all.map(\.cancelled) == [false, false, false])
        #expect(all.count == 3 && all[1].task != all[0].task, "the rest runs in a new task")
    }

    /// A channel the dispatcher itself cancelled (a shed partition, shutdown) is not started again
    /// by its restart: the rest stays pending for whoever reads the partition next.
    @Test func aRestartOfAChannelTheDispatcherCancelledLeavesTheRestPending() async {
        let runs = RunLog()
        let entered = Gate(), release = Gate()
        let dispatcher = ChannelDispatcher(concurrency: 1, maxQueued: 1000, runLimit: 8) { run, task in
            runs.add(run.map { $0.message.seq ?? 0 })
            entered.open()
            await release.wait()
            return .restart(finished: 1, retries: 1)
        }
        await dispatcher.submit((1...3).map { InboundMessage(stream: "s", id: "\($0)-0", channel: "a", seq: Int64($0), fields: []) })
        await entered.wait()
        await dispatcher.cancelRunning(streams: ["s"])
        release.open()
        #expect(await dispatcher.waitUntilDrained(timeout: .seconds(60)))
        #expect(runs.all == [[1, 2, 3]])
        #expect(await dispatcher.inFlightCounts["s"] == 0)
    }

    /// A partition shed and read again while a stopped channel task still runs: the messages
    /// queued behind it go to a new task rather than waiting for claim-idle.
    @Test func messagesQueuedBehindAStoppedTaskRunInANewOne() async {
        let runs = RunLog()
        let entered = Gate(), release = Gate()
        let dispatcher = ChannelDispatcher(concurrency: 1, maxQueued: 1000, runLimit: 8) { run, _ in
            runs.add(run.map { $0.message.seq ?? 0 })
            if run[0].message.seq == 1 {
                entered.open()
                await release.wait()
            }
            return .done
        }
        await dispatcher.submit(InboundMessage(stream: "p", id: "1-0", channel: "a", seq: 1, fields: []))
        await entered.wait()
        await dispatcher.cancelRunning(streams: ["p"])
        await dispatcher.dropQueued(streams: ["p"])
        await dispatcher.reopen(streams: ["p"])
        await dispatcher.submit(InboundMessage(stream: "p", id: "2-0", channel: "a", seq: 2, fields: []))
        release.open()
        #expect(await dispatcher.waitUntilDrained(timeout: .seconds(60)))
        #expect(runs.all == [[1], [2]])
    }

    @Test func theRestOfARunWaitsBehindTheMessageThatIsNotReady() async {
        let runs = RunLog()
        let gate = Gate()
        let dispatcher = ChannelDispatcher(concurrency: 1, maxQueued: 1000, runLimit: 8) { run, _ in
            if run[0].message.channel == "x" { await gate.wait(); return .done }
            runs.add(run.map { $0.message.seq ?? 0 })
            // 1 and 2 finish; 3 is not ready the first time.
            if run[0].message.seq == 1 { return .retry(finished: 2, after: .milliseconds(5)) }
            #expect(run[0].retries == 1 && run[0].notReadySince != nil, "the waiting message carries its wait")
            return .done
        }
        await dispatcher.submit(InboundMessage(stream: "s", id: "0-1", channel: "x", seq: nil, fields: []))
        for seq in 1...5 { await dispatcher.submit(InboundMessage(stream: "s", id: "\(seq)-0", channel: "a", seq: Int64(seq), fields: [])) }
        gate.open()
        #expect(await dispatcher.waitUntilDrained(timeout: .seconds(60)))
        #expect(runs.all == [[1, 2, 3, 4, 5], [3, 4, 5]])
    }

    @Test func aRunNeverMixesStreams() async {
        let runs = RunLog()
        let gate = Gate()
        let dispatcher = ChannelDispatcher(concurrency: 1, maxQueued: 1000, runLimit: 8) { run, _ in
            if run[0].message.channel == "x" { await gate.wait() }
            runs.add(run.map { $0.message.seq ?? 0 })
            return .done
        }
        await dispatcher.submit(InboundMessage(stream: "s", id: "0-1", channel: "x", seq: nil, fields: []))
        for (stream, seq) in [("s", 1), ("s", 2), ("t", 3), ("t", 4)] {
            await dispatcher.submit(InboundMessage(stream: stream, id: "\(seq)-0", channel: "a", seq: Int64(seq), fields: []))
        }
        gate.open()
        #expect(await dispatcher.waitUntilDrained(timeout: .seconds(60)))
        #expect(runs.all.filter { $0 != [0] } == [[1, 2], [3, 4]])
    }

    @Test func aParkedChannelFreesItsSlotAndKeepsItsOrder() async {
        let log = EventLog()
        let attempts = EventLog()
        // One slot: channel "a" is not ready twice; "b" must run meanwhile, and "a" keeps its order.
        let dispatcher = ChannelDispatcher(concurrency: 1, maxQueued: 100) { run, _ in
            let job = run[0]
            attempts.enter(job.message.channel)
            attempts.exit(job.message.channel, job.message.seq!)
            if job.message.channel == "a", job.message.seq == 1, job.retries < 2 { return .retry(after: .milliseconds(5)) }
            log.enter(job.message.channel)
            log.exit(job.message.channel, job.message.seq!)
            return .done
        }
        for seq in 1...3 { await dispatcher.submit(InboundMessage(stream: "s", id: "a\(seq)", channel: "a", seq: Int64(seq), fields: [])) }
        await dispatcher.submit(InboundMessage(stream: "s", id: "b1", channel: "b", seq: 1, fields: []))
        #expect(await dispatcher.waitUntilDrained(timeout: .seconds(60)))
        #expect(log.order("a") == [1, 2, 3])
        #expect(log.order("b") == [1])
        #expect(attempts.order("a") == [1, 1, 1, 2, 3])
    }

    @Test func readyChannelsComeOutFirstComeFirstServedEachOnceAndRemovedOnesAreSkipped() {
        var ready = ReadyChannels()
        for channel in ["a", "b", "a", "c", "d"] { ready.append(channel) }
        ready.remove("c")
        #expect(ready.contains("a") && !ready.contains("c"))
        #expect(ready.popFirst() == "a")
        ready.append("a")
        ready.append("c")
        var order: [String] = []
        while let channel = ready.popFirst() { order.append(channel) }
        #expect(order == ["b", "d", "a", "c"])
        #expect(ready.isEmpty)
        ready.append("x")
        ready.removeAll()
        #expect(ready.popFirst() == nil)
    }

    /// A partition being shed: its queued messages are dropped, and a read still under way cannot
    /// queue a later message of the same channel, which would wait for a gap nobody here fills.
    @Test func aShedStreamTakesNothingMoreUntilItIsReopened() async {
        let log = EventLog()
        let gate = Gate()
        let dispatcher = ChannelDispatcher(concurrency: 1, maxQueued: 100) { run, _ in
            let job = run[0]
            if job.message.id == "0-1" { await gate.wait() }
            log.enter(job.message.channel)
            log.exit(job.message.channel, job.message.seq ?? 0)
            return .done
        }
        await dispatcher.submit(InboundMessage(stream: "other", id: "0-1", channel: "x", seq: nil, fields: []))
        await dispatcher.submit(InboundMessage(stream: "p2", id: "1-0", channel: "a", seq: 1, fields: []))
        await dispatcher.dropQueued(streams: ["p2"])
        await dispatcher.submit(InboundMessage(stream: "p2", id: "2-0", channel: "a", seq: 2, fields: []))
        #expect((await dispatcher.inFlightCounts["p2"] ?? 0) == 0, "nothing of the shed stream is held")
        gate.open()
        #expect(await dispatcher.waitUntilDrained(timeout: .seconds(60)))
        #expect(log.order("a").isEmpty)
        await dispatcher.reopen(streams: ["p2"])
        await dispatcher.submit(InboundMessage(stream: "p2", id: "1-0", channel: "a", seq: 1, fields: []))
        #expect(await dispatcher.waitUntilDrained(timeout: .seconds(60)))
        #expect(log.order("a") == [1])
    }

    @Test func aLateArrivingEarlierMessageRunsBeforeLaterOnes() async {
        let log = EventLog()
        let gate = Gate()
        let dispatcher = ChannelDispatcher(concurrency: 1, maxQueued: 100) { run, _ in
            let job = run[0]
            if job.message.id == "0-1" { await gate.wait() }
            log.enter(job.message.channel)
            log.exit(job.message.channel, job.message.seq ?? 0)
            return .done
        }
        // "x" blocks the only slot while "a" queues 5, then 3 (reclaimed late), then 4.
        await dispatcher.submit(InboundMessage(stream: "s", id: "0-1", channel: "x", seq: nil, fields: []))
        for (id, seq) in [("5-0", 5), ("3-0", 3), ("4-0", 4)] {
            await dispatcher.submit(InboundMessage(stream: "s", id: id, channel: "a", seq: Int64(seq), fields: []))
        }
        gate.open()
        #expect(await dispatcher.waitUntilDrained(timeout: .seconds(60)))
        #expect(log.order("a") == [3, 4, 5])
        #expect(StreamID("10-2")! < StreamID("10-10")!)
        #expect(StreamID("9-99")! < StreamID("10-0")!)
    }

    /// The byte parser accepts exactly what the contract's one spelling allows, as the original
    /// definition (Int64, in range, printed back identically) did.
    @Test func seqsParseFromBytesExactlyAsTheirOneSpelling() {
        func reference(_ text: String) -> Int64? {
            guard let value = Int64(text), value > 0, value <= InboundMessage.maxSeq, String(value) == text else { return nil }
            return value
        }
        var cases = ["1", "9", "10", "42", "0", "00", "01", "-1", "+1", "1.0", "1e3", " 1", "1 ", "", "abc", "١",
                     "9007199254740991", "9007199254740992", "9999999999999999", "10000000000000000",
                     "9223372036854775807", "9223372036854775808", "99999999999999999999"]
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let digits = Int.random(in: 1...18, using: &generator)
            cases.append(String((0..<digits).map { _ in "0123456789".randomElement(using: &generator)! }))
        }
        for text in cases {
            #expect(InboundMessage.parseSeq(text) == reference(text), "\(text)")
        }
    }

    @Test func streamIDsParseOnlyAsMillisecondsDashSequence() throws {
        let max = try #require(StreamID("18446744073709551615-18446744073709551615"))
        #expect(max.ms == .max && max.seq == .max)
        let plain = try #require(StreamID("1526919030474-55"))
        #expect(plain.ms == 1526919030474 && plain.seq == 55)
        for bad in ["", "-", "5", "5-", "-5", "5--6", "5-6-7", "+5-6", "5-+6", "a-1", "1-b", " 1-2", "1-2 ",
                    "18446744073709551616-0", "0-18446744073709551616", "١-٢"] {
            #expect(StreamID(bad) == nil, "\(bad)")
        }
        // The end-to-end latency reads the milliseconds of the id.
        #expect(WorkerMetrics.endToEndNanoseconds(entryID: "1000-0", now: Date(timeIntervalSince1970: 2)) == 1_000_000_000)
        #expect(WorkerMetrics.endToEndNanoseconds(entryID: "not-an-id", now: Date()) == nil)
    }

    @Test func afterStopStartingOnlyTheRunningTurnFinishesAndTheQueueIsDropped() async {
        let started = EventLog()
        let release = Gate()
        let dispatcher = ChannelDispatcher(concurrency: 1, maxQueued: 100) { run, _ in
            let job = run[0]
            started.enter(job.message.channel)
            started.exit(job.message.channel, job.message.seq ?? 0)
            await release.wait()
            return .done
        }
        for seq in 1...3 { await dispatcher.submit(InboundMessage(stream: "s", id: "\(seq)-0", channel: "a", seq: Int64(seq), fields: [])) }
        await dispatcher.submit(InboundMessage(stream: "s", id: "9-0", channel: "b", seq: 1, fields: []))
        try? await Task.sleep(for: .milliseconds(50))
        await dispatcher.stopStarting()
        #expect(await dispatcher.inFlight == 1, "only the running turn is left")
        #expect(await dispatcher.inFlightEntries["s"] == ["1-0"], "dropped entries are no longer refreshed")
        await dispatcher.submit(InboundMessage(stream: "s", id: "10-0", channel: "c", seq: 1, fields: []))
        #expect(await dispatcher.inFlight == 1, "nothing is accepted any more")
        #expect(await !dispatcher.waitUntilDrained(timeout: .milliseconds(100)), "the wait ends at its timeout")
        release.open()
        #expect(await dispatcher.waitUntilDrained(timeout: .seconds(60)))
        #expect(started.order("a") == [1] && started.order("b").isEmpty && started.order("c").isEmpty)
    }

    @Test func theReaderWaitsWhileTooMuchIsQueued() async {
        let release = Gate()
        let dispatcher = ChannelDispatcher(concurrency: 1, maxQueued: 2) { _, _ in
            await release.wait()
            return .done
        }
        await dispatcher.submit(InboundMessage(stream: "s", id: "1-0", channel: "a", seq: nil, fields: []))
        await dispatcher.submit(InboundMessage(stream: "s", id: "2-0", channel: "a", seq: nil, fields: []))
        let reader = Task { await dispatcher.waitForCapacity(); return true }
        try? await Task.sleep(for: .milliseconds(50))
        #expect(await dispatcher.inFlight == 2)
        release.open()
        #expect(await reader.value)
        #expect(await dispatcher.waitUntilDrained(timeout: .seconds(60)))
    }
}

/// The runs a dispatcher handed over, in order.
final class RunLog: Sendable {
    private let runs = Mutex<[[Int64]]>([])
    func add(_ run: [Int64]) { runs.withLock { $0.append(run) } }
    var all: [[Int64]] { runs.withLock { $0 } }
}
