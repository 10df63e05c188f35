import StreamTools
import Testing

/// The verdict of `sgctl verify` on one channel, from records built by hand.
@Suite struct ChannelAuditTests {
    static func record(counter: Int64? = nil, lastSeq: Int64?, count: Int64? = nil, history: [Int64?],
                       dead: Set<Int64> = [], streamSeqs: [Int64] = []) -> ChannelRecord {
        var r = ChannelRecord(channel: "c")
        r.counter = counter
        r.lastSeq = lastSeq
        r.count = count ?? Int64(history.count)
        r.history = history.map { $0.map(ChannelRecord.HistoryItem.seq) ?? .unsequenced }
        r.deadLettered = dead
        r.streamSeqs = streamSeqs
        return r
    }

    @Test func everyProducedSeqAppliedOnceInOrderPasses() {
        let audit = ChannelAudit(Self.record(counter: 5, lastSeq: 5, history: [1, 2, 3, 4, 5]), historyMax: 100)
        #expect(audit.ok)
        #expect(audit.applied == 5)
        #expect(audit.produced == 5)
    }

    @Test func aDeletedHistoryEntryIsLost() {
        let audit = ChannelAudit(Self.record(counter: 5, lastSeq: 5, count: 5, history: [1, 2, 4, 5]), historyMax: 100)
        #expect(!audit.ok)
        #expect(audit.lost == 1)
        #expect(audit.lostExamples == [3])
    }

    @Test func deletingTheOldestEntryIsNotMistakenForTrimming() {
        let audit = ChannelAudit(Self.record(counter: 5, lastSeq: 5, count: 5, history: [2, 3, 4, 5]), historyMax: 100)
        #expect(audit.lost == 1)
        #expect(!audit.historyTrimmed)
    }

    @Test func aSkippedSeqIsLost() {
        let audit = ChannelAudit(Self.record(counter: 4, lastSeq: 4, history: [1, 2, 4]), historyMax: 100)
        #expect(audit.lost == 1)
        #expect(audit.duplicated == 0)
        #expect(!audit.ok)
    }

    @Test func aSeqAppliedTwiceIsADuplicate() {
        let audit = ChannelAudit(Self.record(counter: 3, lastSeq: 3, history: [1, 2, 2, 3]), historyMax: 100)
        #expect(audit.duplicated == 1)
        #expect(audit.lost == 0)
        #expect(!audit.ok)
    }

    @Test func outOfOrderIsReportedApartFromLossAndDuplicates() {
        let audit = ChannelAudit(Self.record(counter: 3, lastSeq: 3, history: [1, 3, 2]), historyMax: 100)
        #expect(audit.outOfOrder == 1)
        #expect(audit.lost == 0)
        #expect(audit.duplicated == 0)
        #expect(!audit.ok)
    }

    @Test func producedButNotAppliedFailsBeforeAnyWorkerRan() {
        let audit = ChannelAudit(Self.record(counter: 3010, lastSeq: nil, count: nil, history: []), historyMax: 100)
        #expect(audit.notApplied == 3010)
        #expect(!audit.ok)
    }

    @Test func deadLetteredSeqsAreAccountedForAndCountedSeparately() {
        let audit = ChannelAudit(Self.record(counter: 4, lastSeq: 4, history: [1, 3, 4], dead: [2]), historyMax: 100)
        #expect(audit.ok)
        #expect(audit.deadLettered == 1)
    }

    @Test func aTrimmedHistoryIsNotAGap() {
        // history-max 3: the list holds the newest three of ten.
        let audit = ChannelAudit(Self.record(counter: 10, lastSeq: 10, count: 10, history: [8, 9, 10]), historyMax: 3)
        #expect(audit.historyTrimmed)
        #expect(audit.ok)
    }

    @Test func aDuplicateInTheTrimmedPartShowsThroughCount() {
        let audit = ChannelAudit(Self.record(counter: 10, lastSeq: 10, count: 11, history: [8, 9, 10]), historyMax: 3)
        #expect(audit.duplicated == 1)
        #expect(!audit.ok)
    }

    @Test func withoutCountersTheStreamsOwnEntriesAreTheReference() {
        let fine = ChannelAudit(Self.record(lastSeq: 3, history: [1, 2, 3], streamSeqs: [1, 2, 3]), historyMax: 100)
        #expect(fine.ok)
        let behind = ChannelAudit(Self.record(lastSeq: 2, history: [1, 2], streamSeqs: [1, 2, 3]), historyMax: 100)
        #expect(behind.notApplied == 1)
    }

    @Test func absurdValuesNeverCrash() {
        let audit = ChannelAudit(Self.record(counter: Int64.max, lastSeq: Int64.min, count: -4, history: [Int64.max, -1, 0]), historyMax: 100)
        #expect(!audit.ok)
        #expect(audit.unreadable == 3)
        let huge = ChannelAudit(Self.record(counter: (1 << 53) - 1, lastSeq: (1 << 53) - 1, history: [(1 << 53) - 1]), historyMax: 100)
        #expect(huge.lost == (1 << 53) - 2)
        #expect(huge.lostExamples == [1, 2, 3, 4, 5])
    }

    @Test func nothingToVerifyFails() {
        #expect(!VerifyReport().ok)
        #expect(VerifyReport().text(keyPrefix: "sg", stream: "s").contains("nothing to verify"))
    }
}
