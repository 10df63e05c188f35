import DistributedLocking
@testable import StreamWorker
import Testing

/// The pure decisions of processing a run: what a claim does with the queued messages, and the policy.
@Suite struct RunPlanTests {
    @Test func consecutiveSeqsAllRunTheHandler() {
        let plan = RunPlan(seqs: [5, 6, 7], lastSeq: 4, headGapTimedOut: false)
        #expect(plan.steps == [.handle(acceptingGap: false), .handle(acceptingGap: false), .handle(acceptingGap: false)])
        #expect(plan.headGap == nil)
        #expect(plan.handlesAny)
    }

    @Test func seqsAtOrBelowLastSeqAreDuplicatesAndTheNextOneRuns() {
        let plan = RunPlan(seqs: [3, 4, 5], lastSeq: 4, headGapTimedOut: false)
        #expect(plan.steps == [.duplicate, .duplicate, .handle(acceptingGap: false)])
    }

    @Test func onlyDuplicatesRunNoHandler() {
        let plan = RunPlan(seqs: [1, 2], lastSeq: 9, headGapTimedOut: false)
        #expect(plan.steps == [.duplicate, .duplicate])
        #expect(!plan.handlesAny)
    }

    @Test func aHeadBehindAGapWaitsAndNothingRuns() {
        let plan = RunPlan(seqs: [7, 8], lastSeq: 4, headGapTimedOut: false)
        #expect(plan.steps.isEmpty)
        #expect(plan.headGap == 4)
    }

    @Test func aHeadPastGapTimeoutRunsSkippingTheMissingSeqsAndTheNextFollows() {
        let plan = RunPlan(seqs: [7, 8], lastSeq: 4, headGapTimedOut: true)
        #expect(plan.steps == [.handle(acceptingGap: true), .handle(acceptingGap: false)])
        #expect(plan.headGap == nil)
    }

    @Test func aGapLaterInTheRunCutsItThereWithoutWaiting() {
        // Only the head's wait counts toward gap-timeout: a later gap is never skipped in passing.
        let plan = RunPlan(seqs: [5, 6, 9, 10], lastSeq: 4, headGapTimedOut: true)
        #expect(plan.steps == [.handle(acceptingGap: false), .handle(acceptingGap: false)])
        #expect(plan.headGap == nil)
    }

    @Test func messagesWithoutSeqAlwaysRunAndLeaveTheOrderAlone() {
        let plan = RunPlan(seqs: [nil, 5, nil, 6], lastSeq: 4, headGapTimedOut: false)
        #expect(plan.steps == Array(repeating: .handle(acceptingGap: false), count: 4))
    }

    @Test func aRepeatedSeqInOneRunIsADuplicateTheSecondTime() {
        let plan = RunPlan(seqs: [5, 5, 6], lastSeq: 4, headGapTimedOut: false)
        #expect(plan.steps == [.handle(acceptingGap: false), .duplicate, .handle(acceptingGap: false)])
    }

    @Test func theLargestSeqIsPlannedWithoutOverflow() {
        let max = InboundMessage.maxSeq
        #expect(RunPlan(seqs: [max], lastSeq: max - 1, headGapTimedOut: false).steps == [.handle(acceptingGap: false)])
        #expect(RunPlan(seqs: [max], lastSeq: .max, headGapTimedOut: false).steps == [.duplicate])
    }
}

@Suite struct ProcessingPolicyTests {
    let policy = ProcessingPolicy(gapTimeout: .seconds(30), runBudget: .milliseconds(200))
    let t0 = ContinuousClock.now

    @Test func handlerBackoffDoublesFromOneHundredMilliseconds() {
        #expect(policy.handlerBackoff(failures: 1) == .milliseconds(100))
        #expect(policy.handlerBackoff(failures: 2) == .milliseconds(200))
        #expect(policy.handlerBackoff(failures: 3) == .milliseconds(400))
        #expect(policy.handlerBackoff(failures: 0) == .milliseconds(100), "never shorter than the first")
        #expect(policy.handlerBackoff(failures: 500) == policy.handlerBackoff(failures: 10), "bounded")
    }

    @Test func aParkedChannelBacksOffUpToTwoHundredMillisecondsWithoutAWakeUp() {
        #expect(policy.parkPause(retries: 0, woken: false) == .milliseconds(5))
        #expect(policy.parkPause(retries: 1, woken: false) == .milliseconds(10))
        #expect(policy.parkPause(retries: 5, woken: false) == .milliseconds(160))
        #expect(policy.parkPause(retries: 6, woken: false) == .milliseconds(200))
        #expect(policy.parkPause(retries: 60, woken: false) == .milliseconds(200))
        #expect(policy.parkPause(retries: 0, woken: true) == .milliseconds(250), "a release normally wakes it first")
    }

    @Test func aGapTimesOutOnlyOnceItHasBeenWaitedOut() {
        #expect(!policy.gapHasTimedOut(since: nil, now: t0), "first met just now")
        #expect(!policy.gapHasTimedOut(since: t0, now: t0 + .seconds(29)))
        #expect(policy.gapHasTimedOut(since: t0, now: t0 + .seconds(30)))
        #expect(ProcessingPolicy(gapTimeout: .zero).gapHasTimedOut(since: nil, now: t0), "a zero timeout never waits")
    }

    @Test func aRunStartsNoMessageOnceItsBudgetIsSpent() {
        #expect(policy.runMayContinue(started: t0, now: t0 + .milliseconds(199)))
        #expect(!policy.runMayContinue(started: t0, now: t0 + .milliseconds(200)))
    }
}

@Suite struct ChannelStateTests {
    @Test func theNextMessageOfARunSeesThePreviousUpdate() {
        var state = ChannelState(fields: ["count": "2", "name": "a", "last_seq": "4"])
        state.apply(StateUpdate(setFields: ["name": "b"], increment: ["count": 3, "new": -1], append: ["x"]), seq: 5, id: "9-0")
        #expect(state.fields == ["count": "5", "name": "b", "new": "-1", "last_seq": "5", "last_id": "9-0"])
        state.apply(StateUpdate(), seq: nil, id: "10-0")
        #expect(state.lastSeq == 5 && state.lastID == "10-0")
    }
}
