import Chaos
import Testing

/// The checker on synthetic audit trails: no Redis, no processes.
struct InvariantCheckerTests {
    static func handled(_ consumer: String, _ channel: String = "ch", fence: Int64, seq: Int64, _ enter: Int64, _ exit: Int64,
                        status: HandledRecord.Status = .completed) -> AuditEvent {
        .handled(HandledRecord(consumer: consumer, channel: channel, entry: "\(seq)-0", seq: seq, fence: fence,
                               enterMicros: enter, exitMicros: exit, status: status))
    }

    static func committed(_ consumer: String, _ channel: String = "ch", fence: Int64, seq: Int64, at: Int64,
                          _ outcome: CommitRecord.Outcome) -> AuditEvent {
        .committed(CommitRecord(consumer: consumer, channel: channel, entry: "\(seq)-0", seq: seq, fence: fence, atMicros: at, outcome: outcome))
    }

    static func observation(history: [Int64], produced: Int64? = nil, audit: [AuditEvent], faults: [FaultEvent] = []) -> ChaosObservation {
        ChaosObservation(produced: ["ch": produced ?? Int64(history.count)], histories: ["ch": history.map { HistoryEntry(seq: $0) }],
                         audit: audit, faults: faults)
    }

    @Test func aCleanSerialRunPassesUnderStrictExclusion() {
        let audit = [
            Self.handled("w0", fence: 1, seq: 1, 100, 200), Self.committed("w0", fence: 1, seq: 1, at: 210, .applied),
            Self.handled("w1", fence: 2, seq: 2, 220, 300), Self.committed("w1", fence: 2, seq: 2, at: 310, .applied),
        ]
        let results = InvariantChecker.check(Self.observation(history: [1, 2], audit: audit), policy: .strict)
        #expect(results.ok)
        #expect(results.overlaps == 0)
        #expect(results.messages == 2 && results.applied == 2)
    }

    @Test func anOverlapWithoutARejectedCommitIsFlagged() {
        // Both holders applied: the older one's write was not refused.
        let audit = [
            Self.handled("w0", fence: 1, seq: 1, 100, 400), Self.committed("w0", fence: 1, seq: 1, at: 410, .applied),
            Self.handled("w1", fence: 2, seq: 2, 300, 500), Self.committed("w1", fence: 2, seq: 2, at: 510, .applied),
        ]
        for policy in [ExclusionPolicy.strict, .olderHolderRefused] {
            let results = InvariantChecker.check(Self.observation(history: [1, 2], audit: audit), policy: policy)
            #expect(results.overlaps == 1)
            #expect(results.unresolvedOverlaps == 1)
            #expect(!results.ok)
            #expect(results.violations.contains { $0.contains("w0") && $0.contains("w1") })
        }
    }

    @Test func anOverlapThatEndsWithTheOlderHoldersStaleCommitRejectedIsAccepted() {
        // w0 (fence 1) is paused inside the handler; w1 claims fence 2 and applies; w0's late commit is refused.
        let audit = [
            Self.handled("w1", fence: 2, seq: 1, 300, 400), Self.committed("w1", fence: 2, seq: 1, at: 410, .applied),
            Self.handled("w0", fence: 1, seq: 1, 100, 900), Self.committed("w0", fence: 1, seq: 1, at: 950, .lost),
        ]
        let results = InvariantChecker.check(Self.observation(history: [1], audit: audit), policy: .olderHolderRefused)
        #expect(results.overlaps == 1)
        #expect(results.unresolvedOverlaps == 0)
        #expect(results.rejectedStaleCommits == 1)
        #expect(results.ok)
        // The same trail breaks strict exclusion: no fault of such a run may let a holder outlive its lease.
        #expect(!InvariantChecker.check(Self.observation(history: [1], audit: audit), policy: .strict).ok)
    }

    @Test func aLateCommitAfterTheHandlerExitCountsAsPartOfTheOverlap() {
        // w0 left the handler at 200 but was paused before committing; w1 entered at 300; the commit at 900 was refused.
        let audit = [
            Self.handled("w0", fence: 1, seq: 1, 100, 200),
            Self.handled("w1", fence: 2, seq: 1, 300, 400), Self.committed("w1", fence: 2, seq: 1, at: 410, .applied),
            Self.committed("w0", fence: 1, seq: 1, at: 900, .lost),
        ]
        let results = InvariantChecker.check(Self.observation(history: [1], audit: audit), policy: .olderHolderRefused)
        #expect(results.overlaps == 1)
        #expect(results.unresolvedOverlaps == 0)
        #expect(results.ok)
    }

    @Test func anAbandonedOlderHolderResolvesTheOverlap() {
        let audit = [
            Self.handled("w0", fence: 1, seq: 1, 100, 700, status: .cancelled),
            Self.handled("w1", fence: 2, seq: 1, 300, 400), Self.committed("w1", fence: 2, seq: 1, at: 410, .applied),
        ]
        let results = InvariantChecker.check(Self.observation(history: [1], audit: audit), policy: .olderHolderRefused)
        #expect(results.ok)
        #expect(results.abandonedAttempts == 1)

        // The handler finished, but the worker saw the lease gone before sending the commit.
        let lostFirst = [
            Self.handled("w0", fence: 1, seq: 1, 100, 700), Self.committed("w0", fence: 1, seq: 1, at: 710, .leaseLost),
            Self.handled("w1", fence: 2, seq: 1, 300, 400), Self.committed("w1", fence: 2, seq: 1, at: 410, .applied),
        ]
        let settled = InvariantChecker.check(Self.observation(history: [1], audit: lostFirst), policy: .olderHolderRefused)
        #expect(settled.ok)
        #expect(settled.abandonedAttempts == 1)
        #expect(settled.rejectedStaleCommits == 0)
    }

    @Test func anOverlapWhoseOlderHolderHasNoRecordedOutcomeIsNotExcused() {
        let audit = [
            Self.handled("w0", fence: 1, seq: 1, 100, 700),
            Self.handled("w1", fence: 2, seq: 2, 300, 400), Self.committed("w1", fence: 2, seq: 2, at: 410, .applied),
        ]
        let results = InvariantChecker.check(Self.observation(history: [1, 2], audit: audit), policy: .olderHolderRefused)
        #expect(results.unresolvedOverlaps == 1)
        #expect(!results.ok)
    }

    @Test func theHistorysFencesSettleAnOlderHolderWhoseOutcomeWasNotRecorded() {
        // w0 (fence 1) left no commit record; the history shows seq 1 was written under fence 2.
        let audit = [
            Self.handled("w0", fence: 1, seq: 1, 100, 700),
            Self.handled("w1", fence: 2, seq: 1, 300, 400),
        ]
        var observation = Self.observation(history: [1], audit: audit)
        observation.histories["ch"] = [HistoryEntry(seq: 1, fence: 2)]
        let settled = InvariantChecker.check(observation, policy: .olderHolderRefused)
        #expect(settled.ok)
        #expect(settled.unknownOutcomes == 0)
        // Written under the older fence instead: the older holder did write during the overlap.
        observation.histories["ch"] = [HistoryEntry(seq: 1, fence: 1)]
        #expect(!InvariantChecker.check(observation, policy: .olderHolderRefused).ok)
    }

    @Test func historyFencesMustNotDecreaseAndMustNotBeStolen() {
        var observation = Self.observation(history: [1, 2, 3], audit: [])
        observation.histories["ch"] = [HistoryEntry(seq: 1, fence: 4), HistoryEntry(seq: 2, fence: 9), HistoryEntry(seq: 3, fence: 8)]
        #expect(InvariantChecker.check(observation, policy: .strict).fenceRegressions == 1)
        // One lease's run: several entries in a row under one fence.
        observation.histories["ch"] = [HistoryEntry(seq: 1, fence: 4), HistoryEntry(seq: 2, fence: 9), HistoryEntry(seq: 3, fence: 9)]
        #expect(InvariantChecker.check(observation, policy: .strict).fenceRegressions == 0)

        observation.histories["ch"] = [HistoryEntry(seq: 1, fence: 4), HistoryEntry(seq: 2, fence: 9), HistoryEntry(seq: 3, fence: 11)]
        observation.audit = [
            Self.handled("w0", fence: 4, seq: 1, 100, 200), Self.handled("w0", fence: 9, seq: 2, 300, 400),
            Self.handled("w1", fence: 11, seq: 3, 500, 600),
        ]
        #expect(InvariantChecker.check(observation, policy: .strict).ok)
        observation.faults = [FaultEvent(kind: .steal, atMicros: 1, stolen: FenceKey(channel: "ch", fence: 9), detail: "DEL")]
        let stolen = InvariantChecker.check(observation, policy: .olderHolderRefused)
        #expect(stolen.stolenLeaseCommits == 1)
        #expect(!stolen.ok)
    }

    @Test func anAppliedLeaseMissingFromTheAuditFailsTheRun() {
        // An empty or sampled audit would otherwise pass strict exclusion vacuously.
        var observation = Self.observation(history: [1, 2], audit: [Self.handled("w0", fence: 1, seq: 1, 100, 200)])
        observation.histories["ch"] = [HistoryEntry(seq: 1, fence: 1), HistoryEntry(seq: 2, fence: 2)]
        let results = InvariantChecker.check(observation, policy: .strict)
        #expect(results.unauditedCommits == 1)
        #expect(!results.ok)
        #expect(results.violations.contains { $0.contains("fence 2") })
    }

    @Test func twoHoldersInsideUnderOneFenceAreAViolation() {
        let audit = [
            Self.handled("w0", fence: 3, seq: 1, 100, 400),
            Self.handled("w1", fence: 3, seq: 2, 200, 300),
        ]
        for policy in [ExclusionPolicy.strict, .olderHolderRefused] {
            let results = InvariantChecker.check(Self.observation(history: [1, 2], audit: audit), policy: policy)
            #expect(results.sharedFences == 1)
            #expect(!results.ok)
        }
    }

    /// A run: one holder handles seqs 1 and 2 under one lease and commits both at the end, so the
    /// first message's attempt is still open while the second runs.
    @Test func oneHoldersRunUnderOneFenceIsNoViolation() {
        let audit = [
            Self.handled("w0", fence: 3, seq: 1, 100, 200),
            Self.handled("w0", fence: 3, seq: 2, 210, 300),
            Self.committed("w0", fence: 3, seq: 1, at: 310, .applied),
            Self.committed("w0", fence: 3, seq: 2, at: 310, .applied),
        ]
        var observation = Self.observation(history: [1, 2], audit: audit)
        observation.histories["ch"] = [HistoryEntry(seq: 1, fence: 3), HistoryEntry(seq: 2, fence: 3)]
        let results = InvariantChecker.check(observation, policy: .strict)
        #expect(results.ok, "\(results.violations)")
        #expect(Attempt.join(audit).map(\.outcome) == [.applied, .applied], "each message meets its own commit record")
    }

    @Test func outOfOrderDuplicateAndLostSeqsAreFlagged() {
        let outOfOrder = InvariantChecker.check(Self.observation(history: [1, 3, 2], audit: []), policy: .strict)
        #expect(outOfOrder.outOfOrder == 1)
        #expect(outOfOrder.duplicates == 0 && outOfOrder.lost == 0)
        #expect(!outOfOrder.ok)

        let duplicate = InvariantChecker.check(Self.observation(history: [1, 2, 2, 3], produced: 3, audit: []), policy: .strict)
        #expect(duplicate.duplicates == 1)
        #expect(!duplicate.ok)

        let lost = InvariantChecker.check(Self.observation(history: [1, 2], produced: 4, audit: []), policy: .strict)
        #expect(lost.lost == 2)
        #expect(!lost.ok)
    }

    @Test func appliedCommitsMustCarryIncreasingFences() {
        let audit = [
            Self.committed("w0", fence: 5, seq: 1, at: 100, .applied),
            Self.committed("w1", fence: 3, seq: 2, at: 200, .applied),
        ]
        let results = InvariantChecker.check(Self.observation(history: [1, 2], audit: audit), policy: .olderHolderRefused)
        #expect(results.fenceRegressions == 1)
        #expect(!results.ok)
    }

    @Test func aCommitUnderAStolenLeaseIsAViolationAndARefusedOneIsCounted() {
        let steal = FaultEvent(kind: .steal, atMicros: 150, stolen: FenceKey(channel: "ch", fence: 1), detail: "DEL")
        let applied = [Self.handled("w0", fence: 1, seq: 1, 100, 200), Self.committed("w0", fence: 1, seq: 1, at: 210, .applied)]
        let bad = InvariantChecker.check(Self.observation(history: [1], audit: applied, faults: [steal]), policy: .olderHolderRefused)
        #expect(bad.stolenLeaseCommits == 1)
        #expect(!bad.ok)

        let refused = [
            Self.handled("w0", fence: 1, seq: 1, 100, 200), Self.committed("w0", fence: 1, seq: 1, at: 210, .lost),
            Self.handled("w0", fence: 2, seq: 1, 300, 400), Self.committed("w0", fence: 2, seq: 1, at: 410, .applied),
        ]
        let good = InvariantChecker.check(Self.observation(history: [1], audit: refused, faults: [steal]), policy: .olderHolderRefused)
        #expect(good.ok)
        #expect(good.rejectedStaleCommits == 1)
    }

    @Test func auditEntriesDecodeBothKindsAndIgnoreStrangers() {
        let handle = AuditEvent(fields: ["kind": "handle", "consumer": "w0", "channel": "c", "entry": "1-0", "seq": "4",
                                         "fence": "7", "enter_us": "10", "exit_us": "20", "status": "cancelled"])
        #expect(handle == .handled(HandledRecord(consumer: "w0", channel: "c", entry: "1-0", seq: 4, fence: 7,
                                                 enterMicros: 10, exitMicros: 20, status: .cancelled)))
        let commit = AuditEvent(fields: ["kind": "commit", "consumer": "w0", "channel": "c", "entry": "1-0", "seq": "",
                                         "fence": "7", "at_us": "30", "outcome": "stale"])
        #expect(commit == .committed(CommitRecord(consumer: "w0", channel: "c", entry: "1-0", seq: nil, fence: 7, atMicros: 30, outcome: .stale)))
        #expect(AuditEvent(fields: ["kind": "commit", "consumer": "w0", "channel": "c", "entry": "1", "fence": "x"]) == nil)
        #expect(AuditEvent(fields: ["something": "else"]) == nil)
    }

    @Test func aWorkerIsInsideFromItsEnterRecordUntilItsHandlerRecord() {
        let events: [AuditEvent] = [
            .entered(consumer: "w0", lease: FenceKey(channel: "a", fence: 1), atMicros: 10),
            .entered(consumer: "w1", lease: FenceKey(channel: "b", fence: 7), atMicros: 11),
            Self.handled("w0", "a", fence: 1, seq: 1, 10, 20),
            .entered(consumer: "w2", lease: FenceKey(channel: "a", fence: 2), atMicros: 21),
        ]
        #expect(AuditEvent.workersInside(events) == ["w1", "w2"])
        #expect(AuditEvent(fields: ["kind": "enter", "consumer": "w1", "channel": "b", "entry": "1-0", "seq": "", "fence": "7", "at_us": "11"])
            == events[1])
    }

    @Test func thePolicyIsStrictOnlyWhenNoFaultCanEndALiveHoldersLease() {
        #expect(ExclusionPolicy.forFaults([]) == .strict)
        #expect(ExclusionPolicy.forFaults([.kill]) == .strict)
        for kind in [FaultKind.pause, .steal, .connkill, .restart] {
            #expect(ExclusionPolicy.forFaults([.kill, kind]) == .olderHolderRefused)
        }
    }

    @Test func theReportTableNamesEveryFigureAndTheVerdict() throws {
        var results = InvariantChecker.check(Self.observation(history: [1], audit: []), policy: .strict)
        results.rejectedStaleCommits = 3
        let report = ChaosReport(workers: 3, channels: 1, seconds: 2, faults: [FaultEvent(kind: .kill, atMicros: 1, worker: "w0", detail: "SIGKILL")],
                                 invariants: results, drained: true, problems: [])
        let table = report.table()
        for figure in ["faults injected", "messages", "duplicates", "lost", "out-of-order", "overlaps", "rejected stale commits"] {
            #expect(table.contains(figure))
        }
        #expect(table.hasSuffix("result: PASS"))
        let json = try report.json()
        #expect(json.contains(#""rejected_stale_commits":3"#))
        #expect(json.contains(#""ok":true"#))
        #expect(json.contains(#""faults_injected":{"kill":1}"#))
    }
}
