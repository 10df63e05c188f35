import DistributedLocking
import Foundation
import Logging
import RedisClient
import ServiceLifecycle
import Synchronization

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
    }

    /// How a message of the run ended here.
    enum Finish: Sendable, Equatable {
        case applied, duplicate
        /// Not committed; the entry stays pending and will be redelivered (and eventually dead-lettered).
        case leftPending(String)
    }

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
    }

    let client: RedisClient
    let handler: any MessageHandler
    let settings: Settings
    let logger: Logger
    let metrics = WorkerMetrics()

    /// - Parameter jobs: consecutive queued messages of one channel and stream, in order; the first
    ///   one's `notReadySince` is when it first met a gap (past gap-timeout it is applied anyway).
    func process(_ jobs: [DispatchJob]) async -> RunResult {
        let policy = settings.policy, keys = settings.keys
        let channel = jobs[0].message.channel
        // Built on first use: most runs never log, and setting metadata is not free.
        lazy var logger: Logger = {
            var logger = self.logger
            logger[metadataKey: "channel"] = .string(channel)
            return logger
        }()
        let lock = DistributedLock(
            client: client, key: keys.lock(channel: channel), ttl: settings.lockTTL,
            autoRenew: true, maxRenewals: 0, abortOnLoss: true, logger: self.logger)
        let started = ContinuousClock.now
        var finished: [Finish] = []
        var remaining = jobs[...]
        var handlerFailures = 0
        var retries = 0
        func leaveRest(_ reason: String) -> RunResult {
            finished += remaining.map { _ in .leftPending(reason) }
            return RunResult(finished: finished, rest: .none)
        }

        while let head = remaining.first?.message {
            if Task.isCancelled { return leaveRest("shutdown") }
            if retries > policy.maxRetries { return leaveRest("too many lost or failed commits") }
            if !finished.isEmpty {
                // Nothing new starts once shutdown began; the dispatcher's tasks inherit the
                // service's task-locals, so this sees SIGTERM at once.
                if Task.isShuttingDownGracefully { return leaveRest("shutdown") }
                if !policy.runMayContinue(started: started, now: .now) { return RunResult(finished: finished, rest: .requeue) }
            }
            let hasSeq = remaining.contains { $0.message.seq != nil }
            var reads: [RedisCommand] = []
            if handler.needsState { reads.append(RedisCommand("HGETALL", keys.state(channel: channel))) }
            else if hasSeq { reads.append(RedisCommand("HGET", keys.state(channel: channel), "last_seq")) }
            if hasSeq { reads.append(RedisCommand("SMEMBERS", keys.deadSeqs(channel: channel))) }
            guard let results = await lock.acquireBlocking(pollInterval: .seconds(1), timeout: nil, reading: reads) else {
                return leaveRest("cancelled while waiting for the lock")
            }
            let state: ChannelState, lastSeq: Int64?
            do {
                (state, lastSeq) = try Self.decodeState(results, needsState: handler.needsState, hasSeq: hasSeq)
            } catch {
                logger.warning("Reading the channel's state failed; retrying", metadata: ["error": "\(error)"])
                metrics.retry("claim_error")
                await lock.release()
                retries += 1
                try? await Task.sleep(for: policy.commitRetryPause)
                continue
            }
            let plan = RunPlan(seqs: remaining.map(\.message.seq), lastSeq: lastSeq,
                               headGapTimedOut: policy.gapHasTimedOut(since: remaining.first?.notReadySince, now: .now))
            if let known = plan.headGap, let seq = head.seq {
                // Subscribe while still holding the lock, so the next holder's release reaches us.
                let advance = try? await client.subscriber.subscribe(LockKeys.releaseChannel(forLock: lock.key))
                await lock.release()
                logger.debug("Earlier messages of the channel are not applied yet",
                             metadata: ["entry": "\(head.id)", "seq": "\(seq)", "last_seq": "\(known)"])
                return RunResult(finished: finished, rest: .notReady(advance: advance.map { ChannelAdvance(subscription: $0, seq: seq) }))
            }
            if plan.steps.first == .handle(acceptingGap: true) {
                metrics.gapTimeout()
                logger.warning("Gap outlived gap-timeout; applying and skipping the missing seqs",
                               metadata: ["entry": "\(head.id)", "seq": "\(head.seq ?? 0)", "last_seq": "\(lastSeq ?? 0)"])
            }
            if plan.handlesAny, Task.isShuttingDownGracefully {
                await lock.release()
                return leaveRest("shutdown")
            }

            let fence = await lock.fence ?? 0
            let messages = remaining.prefix(plan.steps.count).map(\.message)
            let handled: HandledRun
            let progress = HandlerProgress()
            do {
                handled = try await LeaseContext.$fence.withValue(fence) {
                    try await lock.runWhileHeld { [handler, steps = plan.steps] in
                        await Self.runHandlers(messages, steps: steps, state: state, handler: handler, policy: policy,
                                               started: started, progress: progress)
                    }
                }
            } catch {
                let reached = progress.reached
                for (message, step) in zip(messages, plan.steps).prefix(reached) where step != .duplicate {
                    await handler.finished(message, fence: fence, outcome: .leaseLost)
                }
                await lock.release()
                if Task.isCancelled { return leaveRest("shutdown") }
                logger.warning("Lease lost while handling; retrying", metadata: ["error": "\(error)"])
                metrics.retry("lease_lost")
                retries += 1
                continue
            }

            var settledAll = true
            if handled.items.isEmpty {
                await lock.release()
                if handled.failure == nil { retries += 1 }
            } else {
                let commit = RunCommit(items: handled.items, lockKey: lock.key, token: lock.token, fence: fence,
                                       group: settings.group, keys: keys)
                let outcome: RunCommit.Outcome
                do {
                    outcome = try await commit.run(on: client)
                } catch {
                    logger.warning("Commit failed; retrying", metadata: ["error": "\(error)"])
                    metrics.retry("commit_error")
                    await lock.release()
                    retries += 1
                    try? await Task.sleep(for: policy.commitRetryPause)
                    continue
                }
                for (index, item) in handled.items.enumerated() {
                    await handler.finished(item.message, fence: fence, outcome: .committed(outcome.attempt(at: index)))
                }
                guard case .committed(_, let outcomes) = outcome else {
                    let label = outcome == .lost ? "lost" : "stale"
                    for _ in handled.items { metrics.committed(label) }
                    logger.warning("Commit rejected; retrying from the lock", metadata: ["outcome": "\(outcome)"])
                    await lock.release()
                    retries += 1
                    continue
                }
                await lock.releasedExternally()
                var settled = 0
                for (item, result) in zip(handled.items, outcomes) {
                    if result == .applied {
                        metrics.committed("applied")
                        metrics.endToEnd(entryID: item.message.id)
                        finished.append(.applied)
                    } else if result == .duplicate {
                        metrics.committed("duplicate")
                        finished.append(.duplicate)
                    } else {
                        break
                    }
                    settled += 1
                }
                remaining = remaining.dropFirst(settled)
                if settled > 0 {
                    handlerFailures = 0
                } else if outcomes.first == .gap {
                    // Released by the script itself; a release after it could be missed, so this waits by polling.
                    return RunResult(finished: finished, rest: .notReady(advance: nil))
                } else {
                    retries += 1
                }
                settledAll = settled == handled.items.count
            }

            if let failure = handled.failure, settledAll {
                if Task.isCancelled { return leaveRest("shutdown") }
                handlerFailures += 1
                metrics.handlerError()
                logger.warning("Handler failed", metadata: ["entry": "\(remaining.first?.message.id ?? "")", "error": "\(failure)",
                                                          "attempt": "\(handlerFailures)"])
                if handlerFailures >= policy.handlerAttempts {
                    return leaveRest("handler failed \(handlerFailures) times: \(failure)")
                }
                metrics.retry("handler_error")
                try? await Task.sleep(for: policy.handlerBackoff(failures: handlerFailures))
            }
        }
        return RunResult(finished: finished, rest: .none)
    }

    /// The handlers' part of a run, as it ran under the lease.
    struct HandledRun: Sendable {
        /// The leading messages ready to commit: duplicates and those whose handler returned.
        var items: [RunCommit.Item]
        /// Why the message after `items` failed, if its handler threw.
        var failure: (any Error)?
    }

    /// Runs the handler for each planned message in order, each seeing the state its predecessors'
    /// updates lead to. Stops before a further message once shutdown began or the run's budget is
    /// spent, and at the first failure.
    static func runHandlers(
        _ messages: [InboundMessage], steps: [RunPlan.Step], state: ChannelState, handler: any MessageHandler,
        policy: ProcessingPolicy, started: ContinuousClock.Instant, progress: HandlerProgress
    ) async -> HandledRun {
        var state = state
        var items: [RunCommit.Item] = []
        items.reserveCapacity(messages.count)
        for (index, (message, step)) in zip(messages, steps).enumerated() {
            guard case .handle(let acceptingGap) = step else {
                items.append(.init(message: message, mode: .duplicate, update: StateUpdate()))
                continue
            }
            if index > 0, Task.isCancelled || Task.isShuttingDownGracefully || !policy.runMayContinue(started: started, now: .now) {
                break
            }
            progress.reached = index + 1
            do {
                let update = try await handler.handle(message, state: state)
                try update.validate()
                if handler.needsState { state.apply(update, seq: message.seq, id: message.id) }
                items.append(.init(message: message, mode: acceptingGap ? .handledAcceptingGap : .handled, update: update))
            } catch {
                return HandledRun(items: items, failure: error)
            }
        }
        return HandledRun(items: items, failure: nil)
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
