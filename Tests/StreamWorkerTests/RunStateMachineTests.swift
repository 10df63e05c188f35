@testable import StreamWorker
import Testing

/// Every event of a run in every state it can arrive in, without Redis or a clock.
@Suite struct RunStateMachineTests {
    let policy = ProcessingPolicy(handlerAttempts: 3, maxRetries: 3, gapTimeout: .seconds(30), runLimit: 32, runBudget: .milliseconds(200))
    let t0 = ContinuousClock.now

    func machine(_ seqs: [Int64?], waitingSince: ContinuousClock.Instant? = nil) -> RunStateMachine {
        RunStateMachine(seqs: seqs, waitingSince: [waitingSince] + Array(repeating: nil, count: seqs.count - 1),
                        policy: policy, started: t0)
    }

    func start(_ m: inout RunStateMachine, at now: ContinuousClock.Instant? = nil, shuttingDown: Bool = false) -> RunStateMachine.Action {
        m.retry(now: now ?? t0, shuttingDown: shuttingDown, cancelled: false)
    }

    let handleAll: (Int) -> RunPlan.Step = { _ in .handle(acceptingGap: false) }

    // MARK: Claiming

    @Test func aRunStartsByClaiming() {
        var m = machine([1, 2])
        #expect(start(&m) == .claim)
        #expect(m.finished.isEmpty && m.head == 0)
    }

    @Test func aRunCancelledBeforeItsClaimLeavesEverythingPending() {
        var m = machine([1, 2])
        #expect(m.retry(now: t0, shuttingDown: false, cancelled: true) == .finish(rest: .none, release: false))
        #expect(m.finished == [.leftPending("shutdown"), .leftPending("shutdown")])
    }

    @Test func shutdownAloneDoesNotStopAClaimOfDuplicatesButStopsHandlers() {
        var m = machine([1, 2])
        #expect(m.retry(now: t0, shuttingDown: true, cancelled: false) == .claim, "nothing has run yet; the claim decides")
        #expect(m.claimed(lastSeq: 0, now: t0, shuttingDown: true) == .finish(rest: .none, release: true))
        #expect(m.finished == [.leftPending("shutdown"), .leftPending("shutdown")])

        var duplicates = machine([1, 2])
        _ = start(&duplicates, shuttingDown: true)
        guard case .handle(let plan) = duplicates.claimed(lastSeq: 5, now: t0, shuttingDown: true) else { Issue.record("no plan"); return }
        #expect(plan.steps == [.duplicate, .duplicate], "acknowledging changes no state, so it still happens")
    }

    @Test func waitingForTheLockInVainLeavesEverythingPending() {
        var m = machine([1])
        _ = start(&m)
        #expect(m.notClaimed() == .finish(rest: .none, release: false))
        #expect(m.finished == [.leftPending("cancelled while waiting for the lock")])
    }

    @Test func anUnreadableStateIsRetriedAfterAPauseAndThenGivenUp() {
        var m = machine([1])
        for _ in 0...policy.maxRetries {
            #expect(start(&m) == .claim)
            #expect(m.stateUnreadable() == .retry(release: true, pause: policy.commitRetryPause))
        }
        #expect(start(&m) == .finish(rest: .none, release: false))
        #expect(m.finished == [.leftPending("too many lost or failed commits")])
    }

    @Test func aRefusedClaimHoldsNothingAndIsRetriedWithinTheBoundThenGivenUp() {
        var m = machine([1, 2])
        for _ in 0...policy.maxRetries {
            #expect(start(&m) == .claim)
            #expect(m.claimRefused() == .retry(release: false, pause: policy.commitRetryPause))
        }
        #expect(start(&m) == .finish(rest: .requeue, release: false))
        #expect(m.finished == [.leftPending("too many lost or failed commits")])
    }

    @Test func aClaimPlansTheHandlersFromTheFirstUnfinishedMessage() {
        var m = machine([3, 4, 5])
        _ = start(&m)
        #expect(m.claimed(lastSeq: 3, now: t0, shuttingDown: false) == .handle(RunPlan(seqs: [3, 4, 5], lastSeq: 3, headGapTimedOut: false)))
    }

    @Test func aHeadBehindAGapParksWithASubscription() {
        var m = machine([7, 8])
        _ = start(&m)
        #expect(m.claimed(lastSeq: 4, now: t0, shuttingDown: false) == .park(subscribe: true))
        #expect(m.finished.isEmpty)
    }

    @Test func aHeadThatWaitedOutGapTimeoutRunsAcceptingTheGap() {
        var m = machine([7, 8], waitingSince: t0)
        _ = start(&m, at: t0 + .seconds(31))
        guard case .handle(let plan) = m.claimed(lastSeq: 4, now: t0 + .seconds(31), shuttingDown: false) else {
            Issue.record("expected a plan"); return
        }
        #expect(plan.steps == [.handle(acceptingGap: true), .handle(acceptingGap: false)])
        var early = machine([7, 8], waitingSince: t0)
        _ = start(&early, at: t0 + .seconds(29))
        #expect(early.claimed(lastSeq: 4, now: t0 + .seconds(29), shuttingDown: false) == .park(subscribe: true))
    }

    // MARK: Handling and committing

    func handling(_ seqs: [Int64?], lastSeq: Int64 = 0) -> RunStateMachine {
        var m = machine(seqs)
        _ = start(&m)
        _ = m.claimed(lastSeq: lastSeq, now: t0, shuttingDown: false)
        return m
    }

    @Test func aRunWhoseHandlersAllReturnedIsCommittedAndFinished() {
        var m = handling([1, 2, 3])
        #expect(m.handled(3, failed: false, cancelled: false) == .commit)
        #expect(m.committed([.applied, .duplicate, .applied], cancelled: false) == .finish(rest: .none, release: false))
        #expect(m.finished == [.applied, .duplicate, .applied])
    }

    @Test func aGapTheCommitFoundAtTheHeadParksWithoutASubscription() {
        var m = handling([1, 2])
        _ = m.handled(2, failed: false, cancelled: false)
        #expect(m.committed([.gap, .notReached], cancelled: false) == .park(subscribe: false))
        #expect(m.finished.isEmpty)
    }

    @Test func whatTheCommitDidNotReachIsClaimedAgainAfterTheSettledPart() {
        var m = handling([1, 2, 3])
        _ = m.handled(3, failed: false, cancelled: false)
        #expect(m.committed([.applied, .duplicate, .notReached], cancelled: false) == .retry(release: false, pause: .zero))
        #expect(m.finished == [.applied, .duplicate] && m.head == 2)
        #expect(start(&m) == .claim)
        #expect(m.claimed(lastSeq: 2, now: t0, shuttingDown: false) == .handle(RunPlan(seqs: [3], lastSeq: 2, headGapTimedOut: false)))
    }

    @Test func aCommitThatSettledNothingCountsTowardTheRetryBound() {
        var m = machine([1])
        for _ in 0...policy.maxRetries {
            #expect(start(&m) == .claim)
            _ = m.claimed(lastSeq: 0, now: t0, shuttingDown: false)
            _ = m.handled(1, failed: false, cancelled: false)
            #expect(m.committed([.notReached], cancelled: false) == .retry(release: false, pause: .zero))
        }
        #expect(start(&m) == .finish(rest: .none, release: false))
        #expect(m.finished == [.leftPending("too many lost or failed commits")])
    }

    @Test func aFailingHandlerAtTheHeadIsRetriedWithBackoffThenLeftPendingAndTheRestRequeued() {
        var m = handling([1, 2])
        #expect(m.handled(0, failed: true, cancelled: false) == .retry(release: true, pause: .milliseconds(100)))
        #expect(m.failuresOfHead == 1)
        #expect(start(&m) == .claim)
        _ = m.claimed(lastSeq: 0, now: t0, shuttingDown: false)
        #expect(m.handled(0, failed: true, cancelled: false) == .retry(release: true, pause: .milliseconds(200)))
        _ = start(&m)
        _ = m.claimed(lastSeq: 0, now: t0, shuttingDown: false)
        #expect(m.handled(0, failed: true, cancelled: false) == .finish(rest: .requeue, release: true))
        #expect(m.finished == [.leftPending("handler failed 3 times")], "seq 2 waits here, kept fresh, for seq 1's redelivery")
    }

    @Test func aFailureAfterSomeMessagesCommitsThemFirstThenBacksOff() {
        var m = handling([1, 2, 3, 4])
        #expect(m.handled(2, failed: true, cancelled: false) == .commit)
        #expect(m.committed([.applied, .applied], cancelled: false) == .retry(release: false, pause: .milliseconds(100)))
        #expect(m.finished == [.applied, .applied])
        #expect(m.failuresOfHead == 1, "the failure belongs to seq 3, the new head")
    }

    @Test func aMessageThatSucceedsAfterFailingResetsTheCountForTheNext() {
        var m = handling([1, 2])
        _ = m.handled(0, failed: true, cancelled: false)
        _ = start(&m)
        _ = m.claimed(lastSeq: 0, now: t0, shuttingDown: false)
        _ = m.handled(1, failed: true, cancelled: false)
        #expect(m.committed([.applied], cancelled: false) == .retry(release: false, pause: .milliseconds(100)),
                "seq 2's first failure, not the third of the run")
        #expect(m.failuresOfHead == 1)
    }

    @Test func aFailureWhoseCommitDidNotSettleEverythingIsNotCountedYet() {
        var m = handling([1, 2, 3])
        _ = m.handled(2, failed: true, cancelled: false)
        #expect(m.committed([.applied, .notReached], cancelled: false) == .retry(release: false, pause: .zero))
        #expect(m.failuresOfHead == 0, "seq 2 runs again from a fresh claim first")
    }

    @Test func cancellationDuringAFailedHandlerLeavesTheRestPending() {
        var m = handling([1, 2])
        #expect(m.handled(0, failed: true, cancelled: true) == .finish(rest: .none, release: true))
        #expect(m.finished == [.leftPending("shutdown"), .leftPending("shutdown")])

        var committedFirst = handling([1, 2])
        _ = committedFirst.handled(1, failed: true, cancelled: true)
        #expect(committedFirst.committed([.applied], cancelled: true) == .finish(rest: .none, release: false))
        #expect(committedFirst.finished == [.applied, .leftPending("shutdown")])
    }

    @Test func aLostLeaseHandsTheRestBackToGoOnInANewTaskWithItsRetries() {
        var m = handling([1, 2])
        #expect(m.leaseLost() == .finish(rest: .restart(retries: 1), release: true))
        #expect(m.finished.isEmpty, "nothing was committed, and nothing is left pending")

        var committedFirst = handling([1, 2])
        _ = committedFirst.handled(1, failed: false, cancelled: false)
        _ = committedFirst.committed([.applied], cancelled: false)
        _ = start(&committedFirst)
        _ = committedFirst.claimed(lastSeq: 1, now: t0, shuttingDown: false)
        #expect(committedFirst.leaseLost() == .finish(rest: .restart(retries: 1), release: true))
        #expect(committedFirst.finished == [.applied], "what was committed before stays finished")
    }

    @Test func aCommitWithoutAReplyIsRetriedAfterAPauseAndARejectedOneAtOnce() {
        var m = handling([1])
        _ = m.handled(1, failed: false, cancelled: false)
        #expect(m.commitFailed() == .retry(release: true, pause: policy.commitRetryPause))
        _ = start(&m)
        _ = m.claimed(lastSeq: 0, now: t0, shuttingDown: false)
        _ = m.handled(1, failed: false, cancelled: false)
        #expect(m.commitRejected() == .retry(release: true, pause: .zero))
    }

    @Test func rejectionsAndLostLeasesAreBoundedTogetherAcrossRestarts() {
        var m = machine([1])
        for round in 0...policy.maxRetries {
            #expect(start(&m) == .claim)
            _ = m.claimed(lastSeq: 0, now: t0, shuttingDown: false)
            if round.isMultiple(of: 2) {
                _ = m.handled(1, failed: false, cancelled: false)
                _ = m.commitRejected()
            } else {
                guard case .finish(.restart(let retries), _) = m.leaseLost() else { Issue.record("no restart"); return }
                #expect(retries == round + 1)
                // The dispatcher starts the rest's next run with the retries so far.
                m = RunStateMachine(seqs: [1], waitingSince: [nil], policy: policy, started: t0, retries: retries)
            }
        }
        #expect(start(&m) == .finish(rest: .none, release: false))
        #expect(m.finished == [.leftPending("too many lost or failed commits")])
    }

    @Test func aRefusedCommitIsTriedAgainWithTheHeadAloneUntilItSettles() {
        var m = handling([1, 2, 3])
        _ = m.handled(3, failed: false, cancelled: false)
        #expect(m.commitRefused() == .retry(release: true, pause: policy.commitRetryPause))
        _ = start(&m)
        #expect(m.claimed(lastSeq: 0, now: t0, shuttingDown: false) == .handle(RunPlan(seqs: [1], lastSeq: 0, headGapTimedOut: false)),
                "a bad update later in the run cannot hold seq 1 back")
        _ = m.handled(1, failed: false, cancelled: false)
        #expect(m.committed([.applied], cancelled: false) == .retry(release: false, pause: .zero))
        _ = start(&m)
        #expect(m.claimed(lastSeq: 1, now: t0, shuttingDown: false) == .handle(RunPlan(seqs: [2, 3], lastSeq: 1, headGapTimedOut: false)),
                "whole runs again once the head settled")
    }

    @Test func tooManyRetriesLeaveOnlyTheHeadPendingAndRequeueTheRest() {
        var m = machine([1, 2, 3])
        for _ in 0...policy.maxRetries {
            _ = start(&m)
            _ = m.claimed(lastSeq: 0, now: t0, shuttingDown: false)
            _ = m.handled(1, failed: false, cancelled: false)
            _ = m.commitRejected()
        }
        #expect(start(&m) == .finish(rest: .requeue, release: false))
        #expect(m.finished == [.leftPending("too many lost or failed commits")])
    }

    // MARK: Between claims

    @Test func aRunPastItsBudgetGoesBackInLineOnceSomethingIsDone() {
        var m = handling([1, 2])
        _ = m.handled(1, failed: false, cancelled: false)
        #expect(m.committed([.applied], cancelled: false) == .retry(release: false, pause: .zero))
        #expect(m.retry(now: t0 + .milliseconds(250), shuttingDown: false, cancelled: false) == .finish(rest: .requeue, release: false))
        #expect(m.finished == [.applied], "the rest is not finished: it goes back to the queue")
    }

    @Test func aRunPastItsBudgetStillClaimsWhenNothingIsDoneYet() {
        var m = machine([1])
        #expect(m.retry(now: t0 + .seconds(5), shuttingDown: false, cancelled: false) == .claim)
    }

    @Test func shutdownBetweenClaimsLeavesTheRestPending() {
        var m = handling([1, 2])
        _ = m.handled(1, failed: false, cancelled: false)
        _ = m.committed([.applied], cancelled: false)
        #expect(m.retry(now: t0, shuttingDown: true, cancelled: false) == .finish(rest: .none, release: false))
        #expect(m.finished == [.applied, .leftPending("shutdown")])
    }
}
