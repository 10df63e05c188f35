/// The decisions of one run of a channel's messages, from its first claim to what the dispatcher
/// does with it: events in (claimed, handlers returned, lease lost, commit outcome, …), actions out
/// (claim, run handlers, commit, release and retry, park, finish). Pure: no I/O and no clock of its
/// own (every event that needs the time is given it), so every path is tested without Redis.
///
/// ``MessageProcessor`` performs the actions and reports their outcomes.
struct RunStateMachine: Sendable {
    /// How a message of the run ended here.
    enum Finish: Sendable, Equatable {
        case applied, duplicate
        /// Not committed; the entry stays pending and will be redelivered (and eventually dead-lettered).
        case leftPending(String)
        /// Its seq was skipped after gap-timeout before it arrived: dead-letter it.
        case skipped
    }

    /// What the dispatcher does with the messages that are not finished.
    enum Rest: Sendable, Equatable {
        /// Nothing is left.
        case none
        /// The run used up its budget: the rest goes back in line behind the other channels.
        case requeue
        /// The first of the rest waits for its predecessors (the lock is released).
        case notReady
        /// The lease was lost while the handlers ran in the run's task, and the loss cancelled
        /// that task: the rest goes on in a new one, from a run that starts with these retries.
        case restart(retries: Int)
    }

    enum Action: Sendable, Equatable {
        /// Claim the channel's lock and read its state.
        case claim
        /// Run the handler under the lease for the plan's steps, which start at the first unfinished message.
        case handle(RunPlan)
        /// Commit what the handlers returned.
        case commit
        /// Release the lock (when `release`), wait `pause`, then call ``retry(now:shuttingDown:cancelled:)``.
        case retry(release: Bool, pause: Duration)
        /// The head is behind a gap: release the lock and hand the rest back as not ready. With
        /// `subscribe`, subscribe to the channel's releases first (the lock is still held, so the
        /// next holder's release cannot be missed); without, the commit released it already.
        case park(subscribe: Bool)
        /// Done here: release the lock when `release`, and hand ``finished`` and `rest` back.
        case finish(rest: Rest, release: Bool)
    }

    private enum State: Sendable, Equatable {
        /// About to claim, or waiting to claim again.
        case idle
        case claiming
        case handling(RunPlan)
        /// `failedAfter`: the handler failed on the message after the ones being committed.
        case committing(failedAfter: Bool)
        case done
    }

    let policy: ProcessingPolicy
    let started: ContinuousClock.Instant
    private let seqs: [Int64?]
    /// When each message first met a gap (the dispatcher keeps it across parks).
    private let waitingSince: [ContinuousClock.Instant?]
    private var state: State = .idle
    private(set) var finished: [Finish] = []
    private var handlerFailures = 0
    private var retries = 0
    /// Set when the script refused a commit: the next claim plans the head alone, so one bad
    /// update does not hold back the messages before it.
    private var headAlone = false

    /// - Parameter retries: those of the run this one restarts (``Rest/restart(retries:)``).
    init(seqs: [Int64?], waitingSince: [ContinuousClock.Instant?], policy: ProcessingPolicy, started: ContinuousClock.Instant,
         retries: Int = 0) {
        precondition(!seqs.isEmpty && seqs.count == waitingSince.count, "a run has messages, each with its wait")
        self.retries = retries
        self.seqs = seqs
        self.waitingSince = waitingSince
        self.policy = policy
        self.started = started
    }

    /// Index of the first message not finished yet.
    var head: Int { finished.count }
    /// Handler failures of the current head so far.
    var failuresOfHead: Int { handlerFailures }

    // MARK: Events

    /// The run starts, or a pause after ``Action/retry(release:pause:)`` is over.
    mutating func retry(now: ContinuousClock.Instant, shuttingDown: Bool, cancelled: Bool) -> Action {
        precondition(state == .idle, "retry while \(state)")
        if cancelled { return leaveRest("shutdown", release: false) }
        if retries > policy.maxRetries { return leaveHead("too many lost or failed commits", release: false) }
        if head > 0 {
            // Nothing new starts once shutdown began.
            if shuttingDown { return leaveRest("shutdown", release: false) }
            if !policy.runMayContinue(started: started, now: now) {
                state = .done
                return .finish(rest: .requeue, release: false)
            }
        }
        state = .claiming
        return .claim
    }

    /// Waiting for the lock ended without it (the task was cancelled).
    mutating func notClaimed() -> Action {
        precondition(state == .claiming, "notClaimed while \(state)")
        return leaveRest("cancelled while waiting for the lock", release: false)
    }

    /// The claim was refused (the lock or fence key is of another type): nothing is held. Retried
    /// within the bound, so the head ends pending, then dead-lettered, rather than waiting forever.
    mutating func claimRefused() -> Action {
        precondition(state == .claiming, "claimRefused while \(state)")
        retries += 1
        state = .idle
        return .retry(release: false, pause: policy.commitRetryPause)
    }

    /// The claim's state read failed or was malformed: the lock is held, the state unknown.
    mutating func stateUnreadable() -> Action {
        precondition(state == .claiming, "stateUnreadable while \(state)")
        retries += 1
        state = .idle
        return .retry(release: true, pause: policy.commitRetryPause)
    }

    /// The lock is held and the claim read the channel's `last_seq` (dead seqs above it counted).
    mutating func claimed(lastSeq: Int64?, now: ContinuousClock.Instant, shuttingDown: Bool) -> Action {
        precondition(state == .claiming, "claimed while \(state)")
        var plan = RunPlan(seqs: Array(seqs[head...]), lastSeq: lastSeq,
                           headGapTimedOut: policy.gapHasTimedOut(since: waitingSince[head], now: now))
        if headAlone { plan.steps = Array(plan.steps.prefix(1)) }
        if plan.headGap != nil {
            state = .done
            return .park(subscribe: true)
        }
        if plan.handlesAny, shuttingDown { return leaveRest("shutdown", release: true) }
        state = .handling(plan)
        return .handle(plan)
    }

    /// The handlers returned: `handled` leading messages of the plan are ready to commit, and
    /// the one after them failed when `failed`.
    mutating func handled(_ handled: Int, failed: Bool, cancelled: Bool) -> Action {
        guard case .handling(let plan) = state else { preconditionFailure("handled while \(state)") }
        precondition(handled <= plan.steps.count, "more handled than planned")
        if handled > 0 {
            state = .committing(failedAfter: failed)
            return .commit
        }
        state = .idle
        guard failed else {
            // Nothing started (cancelled at once): claim again, within the retry bound.
            retries += 1
            return cancelled ? leaveRest("shutdown", release: true) : .retry(release: true, pause: .zero)
        }
        return handlerFailed(cancelled: cancelled, release: true)
    }

    /// The lease ended while the handlers ran (they were cancelled with the run's task); nothing
    /// was committed. The rest goes on in a new task, counting this retry against the same bound.
    mutating func leaseLost() -> Action {
        guard case .handling = state else { preconditionFailure("leaseLost while \(state)") }
        retries += 1
        state = .done
        return .finish(rest: .restart(retries: retries), release: true)
    }

    /// The commit's reply never came (connection error): the outcome is unknown, so claim again;
    /// whatever it did apply is a duplicate then.
    mutating func commitFailed() -> Action {
        guard case .committing = state else { preconditionFailure("commitFailed while \(state)") }
        state = .idle
        retries += 1
        return .retry(release: true, pause: policy.commitRetryPause)
    }

    /// The script refused the commit (a check failed before any write: a field that is not a
    /// counter, a key of the wrong type): nothing applied. Tried again with the head alone.
    mutating func commitRefused() -> Action {
        guard case .committing = state else { preconditionFailure("commitRefused while \(state)") }
        state = .idle
        retries += 1
        headAlone = true
        return .retry(release: true, pause: policy.commitRetryPause)
    }

    /// The commit found the lease gone (`lost`) or a newer holder's fence (`stale`): nothing applied.
    mutating func commitRejected() -> Action {
        guard case .committing = state else { preconditionFailure("commitRejected while \(state)") }
        state = .idle
        retries += 1
        return .retry(release: true, pause: .zero)
    }

    /// The commit checked and released, with one result per committed message.
    mutating func committed(_ results: [RunCommit.Result], cancelled: Bool) -> Action {
        guard case .committing(let failedAfter) = state else { preconditionFailure("committed while \(state)") }
        state = .idle
        var settled = 0
        for result in results {
            switch result {
            case .applied: finished.append(.applied)
            case .duplicate: finished.append(.duplicate)
            case .skipped: finished.append(.skipped)
            case .gap, .notReached: break
            }
            if result == .gap || result == .notReached { break }
            settled += 1
        }
        if settled > 0 {
            handlerFailures = 0
            headAlone = false
        }
        if head == seqs.count { state = .done; return .finish(rest: .none, release: false) }
        if settled == 0, results.first == .gap {
            // The script released the lock itself; a release after it could be missed.
            state = .done
            return .park(subscribe: false)
        }
        if settled == results.count, failedAfter {
            return handlerFailed(cancelled: cancelled, release: false)
        }
        if settled == 0 { retries += 1 }
        return .retry(release: false, pause: .zero)
    }

    // MARK: Helpers

    private mutating func handlerFailed(cancelled: Bool, release: Bool) -> Action {
        if cancelled { return leaveRest("shutdown", release: release) }
        handlerFailures += 1
        if handlerFailures >= policy.handlerAttempts {
            return leaveHead("handler failed \(handlerFailures) times", release: release)
        }
        state = .idle
        return .retry(release: release, pause: policy.handlerBackoff(failures: handlerFailures))
    }

    /// The head stays pending for a redelivery (and dead-lettering after max-deliveries); the rest
    /// goes back to the queue, where it waits behind the head's gap and is kept fresh, instead of
    /// being redelivered with it again and again until it is dead-lettered too.
    private mutating func leaveHead(_ reason: String, release: Bool) -> Action {
        finished.append(.leftPending(reason))
        state = .done
        return .finish(rest: head == seqs.count ? .none : .requeue, release: release)
    }

    /// Everything not finished stays pending, in order: shutdown, or the task was cancelled.
    private mutating func leaveRest(_ reason: String, release: Bool) -> Action {
        finished += Array(repeating: .leftPending(reason), count: seqs.count - head)
        state = .done
        return .finish(rest: .none, release: release)
    }
}
