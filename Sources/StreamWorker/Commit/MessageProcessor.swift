import DistributedLocking
import Foundation
import Logging
import RedisClient
import ServiceLifecycle
import Synchronization
import Tracing

/// Runs a channel's consecutive messages through one claim → the handler for each, in order →
/// one atomic commit, retrying what is safe to retry. The decisions are ``RunPlan`` and
/// ``ProcessingPolicy``; this is the I/O around them.
struct MessageProcessor: Sendable {
    struct Settings: Sendable {
        var group: String
        var consumer: String
        var keys: WorkerKeys
        var lockTTL: Duration
        var policy = ProcessingPolicy()
        /// The field that names a message's channel, written back into a dead letter.
        var channelField = "channel_id"
    }

    typealias Finish = RunStateMachine.Finish

    /// What became of a run: the leading messages that are finished, and what the rest wait for.
    struct RunResult: Sendable {
        var finished: [Finish]
        var rest: Rest
    }

    enum Rest: Sendable {
        /// Nothing is left.
        case none
        /// The run used up its budget: the rest goes back in line behind the other channels.
        case requeue
        /// The next message's predecessor is not applied yet and the lock is released. Retry when
        /// `advance` fires (if there is one) or after a pause.
        case notReady(advance: ChannelAdvance?)
        /// The lease was lost while the handlers ran, and the loss cancelled the channel's task: the
        /// rest goes on in a new task, carrying the run's retries.
        case restart(retries: Int)
    }

    let client: RedisClient
    let handler: any MessageHandler
    let settings: Settings
    let claimer: ClaimBatcher
    let committer: CommitBatcher
    /// Dead-letters a message whose seq gap-timeout skipped before it arrived.
    let deadLetterer: DeadLetterer
    let logger: Logger
    /// Nil when tracing is off: then no span is made and nothing is extracted.
    let tracer: (any Tracer)?
    let metrics = WorkerMetrics()

    /// One run's state across its actions: what the last claim read and the handlers returned.
    struct Run {
        let jobs: [DispatchJob]
        /// The task this runs in, which a lease lost while the handlers run cancels.
        let task: ChannelTask
        let lock: DistributedLock
        let claim: ChannelClaim
        let trace: RunTrace?
        var machine: RunStateMachine
        var state = ChannelState()
        var lastSeq: Int64?
        var handled = HandledRun(items: [], failure: nil)
        var fence: Int64 = 0
    }

    /// - Parameter jobs: consecutive queued messages of one channel and stream, in order; the first
    ///   one's `notReadySince` is when it first met a gap (past gap-timeout it is applied anyway).
    ///
    /// Each action runs in a step of its own: an async function's frame holds every local of its
    /// body for as long as it runs, and this one stays alive while the handler works, once per
    /// channel in flight (with everything inline it was 10.9 KB).
    func process(_ jobs: [DispatchJob], in task: ChannelTask) async -> RunResult {
        var run = start(jobs, in: task)
        var action = run.machine.retry(now: .now, shuttingDown: Task.isShuttingDownGracefully, cancelled: Task.isCancelled)
        while true {
            switch action {
            case .claim: action = await claimStep(&run)
            case .handle(let plan): action = await handleStep(plan, &run)
            case .commit: action = await commitStep(&run)
            case .retry(let release, let pause): action = await retryStep(release: release, pause: pause, &run)
            case .park(let subscribe): return await parkStep(subscribe: subscribe, &run)
            case .finish(let rest, let release): return await finishStep(rest, release: release, &run)
            }
        }
    }

    /// The logger of a run's channel, made only where something is logged.
    private func logger(_ run: Run) -> Logger {
        var logger = self.logger
        logger[metadataKey: "channel"] = .string(run.jobs[0].message.channel)
        return logger
    }

    @inline(never)
    private func start(_ jobs: [DispatchJob], in task: ChannelTask) -> Run {
        let keys = settings.keys
        let channel = jobs[0].message.channel
        let lock = DistributedLock(
            client: client, key: keys.lock(channel: channel), ttl: settings.lockTTL,
            autoRenew: true, maxRenewals: 0, abortOnLoss: true, logger: self.logger)
        let hasSeq = jobs.contains { $0.message.seq != nil }
        let claim = ChannelClaim(lock: lock.key, token: lock.token, channel: channel, keys: keys,
                                 read: handler.needsState ? .state : hasSeq ? .lastSeq : .nothing, hasSeq: hasSeq)
        return Run(jobs: jobs, task: task, lock: lock, claim: claim,
                   trace: tracer.map { RunTrace(tracer: $0, messages: jobs.map(\.message), group: settings.group) },
                   machine: RunStateMachine(seqs: jobs.map(\.message.seq), waitingSince: jobs.map(\.notReadySince),
                                            policy: settings.policy, started: .now, retries: jobs[0].runRetries))
    }

    // The steps below keep their async frames small: a frame holds every local of its function
    // (and of everything inlined into it) while the channel waits in it, once per channel in
    // flight. So each step only awaits; what it decides before and after runs in a synchronous
    // helper, whose locals live on the thread's stack.

    /// Batched with the claims of other channels of the partition; when the lock is taken, waits
    /// for its release as the lock does.
    @inline(never)
    private func claimStep(_ run: inout Run) async -> RunStateMachine.Action {
        let lock = run.lock
        let sentAt = ContinuousClock.now
        let traceStart = run.trace.map { _ in RunTrace.now }
        var claimed: [Result<RESPValue, RedisError>]?
        switch try? await claimer.claim(run.claim, partition: run.jobs[0].message.stream) {
        case .claimed(let claimFence, let results)?:
            if await lock.adoptClaim(fence: claimFence, claimSentAt: sentAt) { claimed = results }
        case .unreadable(let claimFence, let error)?:
            if await lock.adoptClaim(fence: claimFence, claimSentAt: sentAt) {
                return claimUnreadable(error, traceStart: traceStart, &run)
            }
        case .refused(let error)?:
            return claimRefused(error, traceStart: traceStart, &run)
        case .contended?, nil:
            break
        }
        if claimed == nil {
            claimed = await lock.acquireBlocking(pollInterval: .seconds(1), timeout: nil, reading: contendedReads(run))
        }
        let fence = claimed == nil ? 0 : await lock.fence ?? 0
        return claimEnded(claimed, fence: fence, traceStart: traceStart, &run)
    }

    /// What the lock reads when it has to wait for the channel: the claim's reads, unbatched.
    /// Made only then, since most claims are not contended.
    @inline(never)
    private func contendedReads(_ run: Run) -> [RedisCommand] {
        let channel = run.jobs[0].message.channel, keys = settings.keys
        var reads: [RedisCommand] = []
        switch run.claim.read {
        case .state: reads.append(RedisCommand("HGETALL", keys.state(channel: channel)))
        case .lastSeq: reads.append(RedisCommand("HGET", keys.state(channel: channel), "last_seq"))
        case .nothing: break
        }
        if run.claim.hasSeq { reads.append(RedisCommand("SMEMBERS", keys.deadSeqs(channel: channel))) }
        return reads
    }

    /// The claim's span, when tracing.
    private func traceClaim(_ run: Run, from traceStart: DefaultTracerClock.Instant?, outcome: String) {
        guard let trace = run.trace, let traceStart else { return }
        trace.step("claim", messages: run.machine.head..<run.jobs.count, from: traceStart, outcome: { _ in outcome })
    }

    @inline(never)
    private func claimUnreadable(_ error: RedisError, traceStart: DefaultTracerClock.Instant?, _ run: inout Run) -> RunStateMachine.Action {
        traceClaim(run, from: traceStart, outcome: "unreadable")
        logger(run).warning("Reading the channel's state failed; retrying", metadata: ["error": "\(error)"])
        metrics.retry("claim_error")
        return run.machine.stateUnreadable()
    }

    @inline(never)
    private func claimRefused(_ error: RedisError, traceStart: DefaultTracerClock.Instant?, _ run: inout Run) -> RunStateMachine.Action {
        traceClaim(run, from: traceStart, outcome: "refused")
        logger(run).error("Claiming the channel's lock was refused; retrying", metadata: ["error": "\(error)"])
        metrics.retry("claim_refused")
        return run.machine.claimRefused()
    }

    @inline(never)
    private func claimEnded(_ claimed: [Result<RESPValue, RedisError>]?, fence: Int64, traceStart: DefaultTracerClock.Instant?,
                            _ run: inout Run) -> RunStateMachine.Action {
        traceClaim(run, from: traceStart, outcome: claimed != nil ? "claimed" : "not_claimed")
        guard let results = claimed else { return run.machine.notClaimed() }
        do {
            (run.state, run.lastSeq) = try Self.decodeState(results, needsState: handler.needsState, hasSeq: run.claim.hasSeq)
        } catch {
            logger(run).warning("Reading the channel's state failed; retrying", metadata: ["error": "\(error)"])
            metrics.retry("claim_error")
            return run.machine.stateUnreadable()
        }
        run.fence = fence
        run.trace?.claimed(fence: fence, from: run.machine.head)
        let action = run.machine.claimed(lastSeq: run.lastSeq, now: .now, shuttingDown: Task.isShuttingDownGracefully)
        if case .handle(let plan) = action, plan.steps.first == .handle(acceptingGap: true) {
            metrics.gapTimeout()
            logger(run).warning("Gap outlived gap-timeout; applying and skipping the missing seqs",
                                metadata: ["entry": "\(run.jobs[run.machine.head].message.id)", "last_seq": "\(run.lastSeq ?? 0)"])
        }
        return action
    }

    /// The handlers run in the channel's task (a task of their own would cost memory once per
    /// channel in flight), so a lost lease cancels that task, and the run goes on in a new one.
    @inline(never)
    private func handleStep(_ plan: RunPlan, _ run: inout Run) async -> RunStateMachine.Action {
        let progress = HandlerProgress()
        do {
            run.handled = try await run.lock.runWhileHeld(cancellingOnLoss: { [task = run.task] in task.cancel() },
                                                          handlers(plan, run, progress: progress))
        } catch {
            await reportLeaseLost(plan, run, progress: progress)
            return leaseLost(error, &run)
        }
        return handlersReturned(&run)
    }

    @inline(never)
    private func handlers(_ plan: RunPlan, _ run: Run, progress: HandlerProgress) -> @Sendable () async -> HandledRun {
        let head = run.machine.head
        let messages = run.jobs[head..<(head + plan.steps.count)].map(\.message)
        let context = HandlerContext(steps: plan.steps, state: run.state, handler: handler, policy: settings.policy,
                                     started: run.machine.started, progress: progress, fence: run.fence,
                                     trace: run.trace.map { (trace: $0, head: head) })
        return { await LeaseContext.$fence.withValue(context.fence) { await Self.runHandlers(messages, context) } }
    }

    /// Tells the handler which of the messages it reached lost their lease.
    @inline(never)
    private func reportLeaseLost(_ plan: RunPlan, _ run: Run, progress: HandlerProgress) async {
        let head = run.machine.head
        let reached = (0..<progress.reached).filter { plan.steps[$0] != .duplicate }.map { run.jobs[head + $0].message }
        await Self.evenIfCancelled { [handler, fence = run.fence] in
            for message in reached { await handler.finished(message, fence: fence, outcome: .leaseLost) }
        }
    }

    /// Runs `body` to its end even when this task was cancelled (a lost lease or shutdown cancels
    /// the channel's): a cluster client backs off between retries with sleeps that a cancelled
    /// task cuts short, which would leave a lock to expire or an audit record unwritten.
    private static func evenIfCancelled(_ body: @escaping @Sendable () async -> Void) async {
        if Task.isCancelled { await Task { await body() }.value } else { await body() }
    }

    @inline(never)
    private func leaseLost(_ error: any Error, _ run: inout Run) -> RunStateMachine.Action {
        logger(run).warning("Lease lost while handling; retrying", metadata: ["error": "\(error)"])
        metrics.retry("lease_lost")
        return run.machine.leaseLost()
    }

    @inline(never)
    private func handlersReturned(_ run: inout Run) -> RunStateMachine.Action {
        if let failure = run.handled.failure {
            metrics.handlerError()
            logger(run).warning("Handler failed", metadata: [
                "entry": "\(run.jobs[run.machine.head + run.handled.items.count].message.id)", "error": "\(failure)",
                "attempt": "\(run.machine.failuresOfHead + 1)"])
        }
        let action = run.machine.handled(run.handled.items.count, failed: run.handled.failure != nil, cancelled: Task.isCancelled)
        if run.handled.failure != nil, case .retry = action { metrics.retry("handler_error") }
        return action
    }

    @inline(never)
    private func commitStep(_ run: inout Run) async -> RunStateMachine.Action {
        let traceStart = run.trace.map { _ in RunTrace.now }
        let outcome: RunCommit.Outcome
        do {
            outcome = try await committer.commit(commit(of: run))
        } catch {
            return commitFailed(error, traceStart: traceStart, &run)
        }
        traceCommit(run, from: traceStart) { outcome.attempt(at: $0).traceLabel }
        await reportCommitted(run, outcome)
        if case .committed(_, let results) = outcome {
            await run.lock.releasedExternally()
            if results.contains(.skipped) { await deadLetterSkipped(results, run) }
        }
        return commitEnded(outcome, &run)
    }

    /// Messages that arrived after gap-timeout skipped their seqs: applied now they would break
    /// the channel's order, so they go to the dead-letter stream. One that fails to go stays
    /// pending; its redelivery meets the same answer.
    @inline(never)
    private func deadLetterSkipped(_ results: [RunCommit.Result], _ run: Run) async {
        for (index, result) in results.enumerated() where result == .skipped {
            let message = run.handled.items[index].message
            guard let seq = message.seq else { continue }
            let fields = [StreamField(settings.channelField, message.channel), StreamField("seq", String(seq))] + message.fields
            do {
                try await deadLetterer.deadLetter(
                    stream: message.stream, id: message.id, fields: fields, reason: "skipped_seq",
                    detail: "arrived after gap-timeout had skipped seq \(seq)", deliveries: 0, channel: message.channel, seq: seq)
            } catch {
                logger(run).error("Dead-lettering failed; left pending", metadata: ["entry": "\(message.id)", "error": "\(error)"])
            }
        }
    }

    @inline(never)
    private func commit(of run: Run) -> RunCommit {
        RunCommit(items: run.handled.items, lockKey: run.lock.key, token: run.lock.token, fence: run.fence,
                  group: settings.group, keys: settings.keys)
    }

    /// The commit's span, when tracing: `outcome` labels the run's i-th committed message.
    @inline(never)
    private func traceCommit(_ run: Run, from traceStart: DefaultTracerClock.Instant?, outcome: (Int) -> String) {
        guard let trace = run.trace, let traceStart else { return }
        let committing = run.machine.head..<(run.machine.head + run.handled.items.count)
        trace.step("commit", messages: committing, from: traceStart, outcome: { outcome($0 - committing.lowerBound) }, fence: run.fence)
    }

    @inline(never)
    private func commitFailed(_ error: any Error, traceStart: DefaultTracerClock.Instant?, _ run: inout Run) -> RunStateMachine.Action {
        metrics.retry("commit_error")
        if let error = error as? RedisError, error.serverCode != nil {
            traceCommit(run, from: traceStart) { _ in "refused" }
            logger(run).warning("Commit refused; retrying the first message alone", metadata: ["error": "\(error)"])
            return run.machine.commitRefused()
        }
        traceCommit(run, from: traceStart) { _ in "failed" }
        logger(run).warning("Commit failed; retrying", metadata: ["error": "\(error)"])
        return run.machine.commitFailed()
    }

    @inline(never)
    private func reportCommitted(_ run: Run, _ outcome: RunCommit.Outcome) async {
        for (index, item) in run.handled.items.enumerated() {
            await handler.finished(item.message, fence: run.fence, outcome: .committed(outcome.attempt(at: index)))
        }
    }

    @inline(never)
    private func commitEnded(_ outcome: RunCommit.Outcome, _ run: inout Run) -> RunStateMachine.Action {
        let items = run.handled.items
        guard case .committed(_, let results) = outcome else {
            let label = outcome == .lost ? "lost" : "stale"
            for _ in items { metrics.committed(label) }
            logger(run).warning("Commit rejected; retrying from the lock", metadata: ["outcome": "\(outcome)"])
            return run.machine.commitRejected()
        }
        for (item, result) in zip(items, results) {
            if result == .applied {
                metrics.committed("applied")
                metrics.endToEnd(entryID: item.message.id)
            } else if result == .duplicate {
                metrics.committed("duplicate")
            }
        }
        let action = run.machine.committed(results, cancelled: Task.isCancelled)
        if run.handled.failure != nil, case .retry(_, let pause) = action, pause > .zero { metrics.retry("handler_error") }
        return action
    }

    @inline(never)
    private func retryStep(release: Bool, pause: Duration, _ run: inout Run) async -> RunStateMachine.Action {
        if release { await run.lock.release() }
        if pause > .zero { try? await Task.sleep(for: pause) }
        run.handled = HandledRun(items: [], failure: nil)
        return run.machine.retry(now: .now, shuttingDown: Task.isShuttingDownGracefully, cancelled: Task.isCancelled)
    }

    @inline(never)
    private func parkStep(subscribe: Bool, _ run: inout Run) async -> RunResult {
        var advance: ChannelAdvance?
        if subscribe, let seq = run.jobs[run.machine.head].message.seq {
            // Subscribe while still holding the lock, so the next holder's release reaches us.
            if let subscription = try? await client.subscribe(shardChannel: LockKeys.releaseChannel(forLock: run.lock.key)) {
                advance = ChannelAdvance(subscription: subscription, seq: seq)
            }
            await run.lock.release()
            logWaiting(run)
        }
        return parked(advance: advance, run)
    }

    @inline(never)
    private func logWaiting(_ run: Run) {
        let head = run.jobs[run.machine.head].message
        logger(run).debug("Earlier messages of the channel are not applied yet",
                          metadata: ["entry": "\(head.id)", "seq": "\(head.seq ?? 0)", "last_seq": "\(run.lastSeq ?? 0)"])
    }

    @inline(never)
    private func parked(advance: ChannelAdvance?, _ run: Run) -> RunResult {
        run.trace?.end(finished: run.machine.finished, rest: "waiting")
        return RunResult(finished: run.machine.finished, rest: .notReady(advance: advance))
    }

    @inline(never)
    private func finishStep(_ rest: RunStateMachine.Rest, release: Bool, _ run: inout Run) async -> RunResult {
        if release { await Self.evenIfCancelled { [lock = run.lock] in await lock.release() } }
        return finished(rest, run)
    }

    @inline(never)
    private func finished(_ rest: RunStateMachine.Rest, _ run: Run) -> RunResult {
        let finished = run.machine.finished
        if let index = finished.firstIndex(where: { if case .leftPending = $0 { true } else { false } }),
           case .leftPending(let reason) = finished[index], reason != "shutdown" {
            logger(run).warning("Left pending for redelivery", metadata: ["entry": "\(run.jobs[index].message.id)", "reason": "\(reason)"])
        }
        let (label, rest): (String, Rest) = switch rest {
        case .none: ("waiting", .none)
        case .requeue: ("requeued", .requeue)
        case .notReady: ("waiting", .notReady(advance: nil))
        case .restart(let retries): ("lease_lost", .restart(retries: retries))
        }
        run.trace?.end(finished: finished, rest: label)
        return RunResult(finished: finished, rest: rest)
    }

    /// Increments a run's updates hold at most (a single update is held to it by
    /// `StateUpdate.validate`), so the commit's HMGET of them stays within what Lua can unpack.
    static let maxIncrementsPerRun = StateUpdate.maxIncrements

    /// The handlers' part of a run, as it ran under the lease.
    struct HandledRun: Sendable {
        /// The leading messages ready to commit: duplicates and those whose handler returned.
        var items: [RunCommit.Item]
        /// Why the message after `items` failed, if its handler threw.
        var failure: (any Error)?
    }

    /// What the handlers of a run need besides its messages. A class: the handler loop's async
    /// frames pass it along as one reference rather than copying its fields.
    final class HandlerContext: Sendable {
        let steps: [RunPlan.Step]
        let state: ChannelState
        let handler: any MessageHandler
        let policy: ProcessingPolicy
        let started: ContinuousClock.Instant
        let progress: HandlerProgress
        let fence: Int64
        let trace: (trace: RunTrace, head: Int)?

        init(steps: [RunPlan.Step], state: ChannelState, handler: any MessageHandler, policy: ProcessingPolicy,
             started: ContinuousClock.Instant, progress: HandlerProgress, fence: Int64, trace: (trace: RunTrace, head: Int)?) {
            (self.steps, self.state, self.handler, self.policy) = (steps, state, handler, policy)
            (self.started, self.progress, self.fence, self.trace) = (started, progress, fence, trace)
        }
    }

    /// Runs the handler for each planned message in order, each seeing the state its predecessors'
    /// updates lead to. Stops before a further message once shutdown began or the run's budget is
    /// spent, and at the first failure.
    @inline(never)
    static func runHandlers(_ messages: [InboundMessage], _ context: HandlerContext) async -> HandledRun {
        var run = HandlerLoop(context, count: messages.count)
        handling: for index in messages.indices {
            let acceptingGap: Bool
            switch run.next(index, messages[index]) {
            case .recorded: continue
            case .stop: break handling
            case .handle(let accepting): acceptingGap = accepting
            }
            do {
                let update = if context.trace == nil {
                    try await context.handler.handle(messages[index], state: run.state)
                } else {
                    try await handleTraced(messages, at: index, state: run.state, context)
                }
                guard try run.returned(update, by: messages[index], at: index, acceptingGap: acceptingGap) else { break handling }
            } catch {
                return HandledRun(items: run.items, failure: error)
            }
        }
        return HandledRun(items: run.items, failure: nil)
    }

    /// The bookkeeping of ``runHandlers(_:_:)``: its decisions run in synchronous helpers, so their
    /// temporaries stay out of the loop's async frame.
    struct HandlerLoop {
        enum Next {
            /// A duplicate: recorded, nothing to run.
            case recorded
            /// The run stops before this message.
            case stop
            /// Run the handler; it accepts a gap when the gap timed out.
            case handle(acceptingGap: Bool)
        }

        let context: HandlerContext
        var state: ChannelState
        var items: [RunCommit.Item] = []
        /// The commit script reads every incremented field in one HMGET, whose arguments Lua
        /// unpacks (at most 8,000); a run stops before its updates get near that.
        var increments = 0

        init(_ context: HandlerContext, count: Int) {
            self.context = context
            state = context.state
            items.reserveCapacity(count)
        }

        /// What to do with the message at `index`: a duplicate is only recorded; a further message
        /// runs while the task goes on and the run's budget lasts.
        @inline(never)
        mutating func next(_ index: Int, _ message: InboundMessage) -> Next {
            guard case .handle(let acceptingGap) = context.steps[index] else {
                items.append(.init(message: message, mode: .duplicate, update: StateUpdate()))
                return .recorded
            }
            if index > 0, Task.isCancelled || Task.isShuttingDownGracefully
                || !context.policy.runMayContinue(started: context.started, now: .now) {
                return .stop
            }
            context.progress.reached = index + 1
            return .handle(acceptingGap: acceptingGap)
        }

        /// Records what the handler returned; false when the run stops before the next message.
        @inline(never)
        mutating func returned(_ update: StateUpdate, by message: InboundMessage, at index: Int, acceptingGap: Bool) throws -> Bool {
            try update.validate()
            increments += update.increment.count
            if index > 0, increments > MessageProcessor.maxIncrementsPerRun { return false }
            if context.handler.needsState { state.apply(update, seq: message.seq, id: message.id) }
            items.append(.init(message: message, mode: acceptingGap ? .handledAcceptingGap : .handled, update: update))
            return true
        }
    }

    @inline(never)
    private static func handleTraced(_ messages: [InboundMessage], at index: Int, state: ChannelState, _ context: HandlerContext) async throws -> StateUpdate {
        let (trace, head) = context.trace!
        return try await trace.handle(head + index, fence: context.fence) { [handler = context.handler] in
            try await handler.handle(messages[index], state: state)
        }
    }

    /// The state the claim read in its round trip: the state hash (when the handler needs it) or
    /// `last_seq`, then the dead-seq set (when the run has seqs). Dead-lettered seqs just above
    /// `last_seq` count as done, as the commit script treats them.
    /// - Throws: a read that failed, or a reply of the wrong shape, naming the command.
    static func decodeState(_ results: [Swift.Result<RESPValue, RedisError>], needsState: Bool, hasSeq: Bool) throws -> (ChannelState, Int64?) {
        var replies = results.makeIterator()
        func next(_ command: String) throws -> RESPValue {
            guard let result = replies.next() else { throw RedisError.unexpectedReply("the claim returned no reply for \(command)") }
            return try result.get()
        }
        var state = ChannelState()
        var lastSeq: Int64?
        if needsState {
            state.fields = try next("HGETALL").stringHash(from: "HGETALL")
            lastSeq = state.lastSeq
        } else if hasSeq {
            let reply = try next("HGET last_seq")
            guard reply.isNull || reply.int != nil else { throw RedisError.unexpectedReply("HGET last_seq returned \(reply)") }
            lastSeq = reply.int ?? 0
        }
        if hasSeq, var last = lastSeq {
            let reply = try next("SMEMBERS")
            guard let members = reply.array else { throw RedisError.unexpectedReply("SMEMBERS returned \(reply)") }
            var dead = Set<Int64>()
            for member in members {
                guard let seq = member.int else { throw RedisError.unexpectedReply("SMEMBERS returned the member \(member)") }
                dead.insert(seq)
            }
            while last < InboundMessage.maxSeq, dead.contains(last + 1) { last += 1 }
            lastSeq = last
        }
        return (state, lastSeq)
    }
}

/// How many messages of a run its handler loop has reached, readable after the loop was
/// cancelled by a lost lease (when its own result is gone).
final class HandlerProgress: Sendable {
    private let count = Mutex(0)
    var reached: Int {
        get { count.withLock { $0 } }
        set { count.withLock { $0 = newValue } }
    }
}
