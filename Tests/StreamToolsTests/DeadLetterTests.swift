import StreamTools
import StreamWorker
import Testing

@Suite struct DeadLetterTests {
    static func letter(_ original: [StreamField], id: String = "9-0") -> DeadLetter {
        DeadLetter(id: id, entryFields: [
            StreamField("original_id", "5-0"), StreamField("stream", "in"), StreamField("reason", "max_deliveries"),
            StreamField("detail", "gave up"), StreamField("deliveries", "6"), StreamField("consumer", "w1"), StreamField("time_ms", "1000"),
        ] + original.map { StreamField(name: Array("f:".utf8) + $0.name, value: $0.value) })
    }

    @Test func theWorkersBookkeepingAndTheOriginalFieldsAreSeparated() {
        let letter = Self.letter([StreamField("channel_id", "c"), StreamField(name: Array("reason".utf8), value: [0xff])])
        #expect(letter.originalID == "5-0")
        #expect(letter.reason == "max_deliveries")
        #expect(letter.deliveries == 6)
        #expect(letter.timeMilliseconds == 1000)
        #expect(letter.fields == [StreamField("channel_id", "c"), StreamField(name: Array("reason".utf8), value: [0xff])])
        #expect(letter.channel(field: "channel_id") == "c")
    }

    @Test func aRequeueKeepsFieldsInOrderRestampsAValidSeqAndRecordsItself() {
        let entry = RequeueEntry(deadLetter: Self.letter([StreamField("channel_id", "c"), StreamField("seq", "4"), StreamField("text", "x")]), restampSeq: true)
        #expect(entry.fields == [
            StreamField("channel_id", "c"), StreamField("seq", "4"), StreamField("text", "x"),
            StreamField("sg_requeued_from", "9-0"), StreamField("sg_requeues", "1"), StreamField("sg_original_seq", "4"),
        ])
        #expect(entry.seqIndex == 1)
        #expect(entry.originalSeq == 4)
    }

    @Test func aSecondRequeueUpdatesTheRecordInsteadOfAddingAnother() {
        let first = RequeueEntry(deadLetter: Self.letter([StreamField("channel_id", "c"), StreamField("text", "x")], id: "9-0"), restampSeq: true)
        let second = RequeueEntry(deadLetter: Self.letter(first.fields, id: "12-0"), restampSeq: true)
        #expect(second.fields == [
            StreamField("channel_id", "c"), StreamField("text", "x"), StreamField("sg_requeued_from", "12-0"), StreamField("sg_requeues", "2"),
        ])
    }

    @Test func invalidSeqsMissingChannelsAndKeepSeqLeaveTheSeqAlone() {
        let invalid = RequeueEntry(deadLetter: Self.letter([StreamField("channel_id", "c"), StreamField("seq", "-3")]), restampSeq: true)
        #expect(invalid.seqIndex == nil)
        #expect(invalid.fields[1] == StreamField("seq", "-3"))
        let noChannel = RequeueEntry(deadLetter: Self.letter([StreamField("seq", "2")]), restampSeq: true)
        #expect(noChannel.seqIndex == nil)
        let kept = RequeueEntry(deadLetter: Self.letter([StreamField("channel_id", "c"), StreamField("seq", "2")]), restampSeq: false)
        #expect(kept.seqIndex == nil)
        #expect(!kept.fields.contains { $0.name == Array("sg_original_seq".utf8) })
    }

    @Test func reasonsAreCountedMostCommonFirstWithStableTies() {
        var counts = ReasonCounts()
        for reason in ["oversized", "max_deliveries", "invalid_seq", "max_deliveries", "oversized", "max_deliveries"] { counts.add(reason) }
        #expect(counts.top(2).map(\.reason) == ["max_deliveries", "oversized"])
        #expect(counts.top(5).map(\.count) == [3, 2, 1])
        #expect(counts.total == 6)
    }
}
