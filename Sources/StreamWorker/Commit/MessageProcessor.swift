import DistributedLocking
import Foundation
import Logging
import RedisClient
import ServiceLifecycle

/// Runs one message through lock → handler → atomic commit, retrying what is safe to retry.
struct MessageProcessor: Sendable {
    struct Settings: Sendable {
        var group: String
        var consumer: String
        var keys: WorkerKeys
        var lockTTL: Duration
        var gapTimeout: Duration
        var handlerAttempts = 3
    }

    enum Result: Sendable {
        case applied, duplicate
        /// An earlier seq of the channel is not applied yet; the lock is released. Retry when
        /// `advance` fires (if there is one) or after a pause.
        case notReady(lastSeq: Int64, advance: ChannelAdvance?)
        /// Not committed; the entry stays pending and will be redelivered (and eventually dead-lettered).
        case leftPending(String)
    }

    let client: RedisClient
    let handler: any MessageHandler
    let settings: Settings
    let logger: Logger
    let metrics = WorkerMetrics()

    /// - Parameter notReadySince: when this message first met a gap; past `gapTimeout` it is applied anyway.
    func process(_ message: InboundMessage, notReadySince: ContinuousClock.Instant? = nil) async -> Result {
        // Built on first use: most messages never log, and setting metadata is not free.
        lazy var logger: Logger = {
            var logger = self.logger
            logger[metadataKey: "channel"] = .string(message.channel)
            logger[metadataKey: "entry"] = .string(message.id)
            return logger
        }()
        let keys = settings.keys
        let lock = DistributedLock(
            client: client, key: keys.lock(channel: message.channel), ttl: settings.lockTTL,
            autoRenew: true, maxRenewals: 0, abortOnLoss: true, logger: self.logger)
        let gapDeadline = (notReadySince ?? .now) + settings.gapTimeout
        var handlerFailures = 0
        var retries = 0

        while true {
            if Task.isCancelled { return .leftPending("shutdown") }
            if retries > 10 { return .leftPending("too many lost or failed commits") }
            var reads: [RedisCommand] = []
            if handler.needsState { reads.append(RedisCommand("HGETALL", keys.state(channel: message.channel))) }
            else if message.seq != nil { reads.append(RedisCommand("HGET", keys.state(channel: message.channel), "last_seq")) }
            if message.seq != nil { reads.append(RedisCommand("SMEMBERS", keys.deadSeqs(channel: message.channel))) }
            guard let results = await lock.acquireBlocking(pollInterval: .seconds(1), timeout: nil, reading: reads) else {
                return .leftPending("cancelled while waiting for the lock")
            }
            let (state, lastSeq) = Self.decodeState(results, needsState: handler.needsState, hasSeq: message.seq != nil)

            var force = false
            if let seq = message.seq, let lastSeq {
                switch SequenceDecision.decide(seq: seq, lastSeq: lastSeq) {
                case .duplicate:
                    // Acknowledge without running the handler; the commit script re-checks atomically.
                    break
                case .gap(let last) where ContinuousClock.now < gapDeadline:
                    // Subscribe while still holding the lock, so the next holder's release reaches us.
                    let advance = try? await client.subscriber.subscribe(LockKeys.releaseChannel(forLock: lock.key))
                    await lock.release()
                    logger.debug("Earlier messages of the channel are not applied yet", metadata: ["seq": "\(seq)", "last_seq": "\(last)"])
                    return .notReady(lastSeq: last, advance: advance.map { ChannelAdvance(subscription: $0, seq: seq) })
                case .gap(let last):
                    force = true
                    metrics.gapTimeout()
                    logger.warning("Gap outlived gap-timeout; applying and skipping the missing seqs",
                                   metadata: ["seq": "\(seq)", "last_seq": "\(last)"])
                case .apply:
                    break
                }
            }

            let update: StateUpdate
            let fence = await lock.fence ?? 0
            let isDuplicate = message.seq.map { seq in lastSeq.map { seq <= $0 } ?? false } ?? false
            // Nothing new starts once shutdown began (a turn that waited for its lock, or a retry).
            // The dispatcher's tasks inherit the service's task-locals, so this sees SIGTERM at once.
            if !isDuplicate, Task.isShuttingDownGracefully {
                await lock.release()
                return .leftPending("shutdown")
            }
            do {
                update = isDuplicate ? StateUpdate() : try await LeaseContext.$fence.withValue(fence) {
                    try await lock.runWhileHeld { [handler] in try await handler.handle(message, state: state) }
                }
                try update.validate()
            } catch let error as LockError {
                await handler.finished(message, fence: fence, outcome: .leaseLost)
                logger.warning("Lease lost while handling; retrying", metadata: ["error": "\(error)"])
                metrics.retry("lease_lost")
                await lock.release()
                retries += 1
                continue
            } catch {
                await lock.release()
                if Task.isCancelled { return .leftPending("shutdown") }
                handlerFailures += 1
                metrics.handlerError()
                logger.warning("Handler failed", metadata: ["error": "\(error)", "attempt": "\(handlerFailures)"])
                if handlerFailures >= settings.handlerAttempts {
                    return .leftPending("handler failed \(handlerFailures) times: \(error)")
                }
                metrics.retry("handler_error")
                try? await Task.sleep(for: .milliseconds(50) * (1 << handlerFailures))
                continue
            }

            let outcome: CommitOutcome
            do {
                outcome = try await commit(message, lock: lock, update: update, force: force)
                await handler.finished(message, fence: fence, outcome: .committed(outcome))
            } catch {
                logger.warning("Commit failed; retrying", metadata: ["error": "\(error)"])
                metrics.retry("commit_error")
                await lock.release()
                retries += 1
                try? await Task.sleep(for: .milliseconds(50))
                continue
            }
            switch outcome {
            case .applied:
                await lock.releasedExternally()
                metrics.committed("applied")
                metrics.endToEnd(entryID: message.id)
                return .applied
            case .duplicate:
                await lock.releasedExternally()
                metrics.committed("duplicate")
                return .duplicate
            case .gap(let last):
                // Released by the script itself; a release after it could be missed, so this waits by polling.
                await lock.releasedExternally()
                return .notReady(lastSeq: last, advance: nil)
            case .lost, .stale:
                metrics.committed(outcome == .lost ? "lost" : "stale")
                logger.warning("Commit rejected; retrying from the lock", metadata: ["outcome": "\(outcome)"])
                await lock.release()
                retries += 1
                continue
            }
        }
    }

    private func commit(_ message: InboundMessage, lock: DistributedLock, update: StateUpdate, force: Bool) async throws -> CommitOutcome {
        let keys = settings.keys
        let fence = await lock.fence ?? 0
        var arguments: [any RedisArgumentConvertible] = [
            lock.token, String(fence), settings.group, message.id, message.seq.map(String.init) ?? "",
            LockKeys.releaseChannel(forLock: lock.key), force ? "1" : "0",
        ]
        arguments += update.scriptArguments
        let reply = try await client.evaluate(
            WorkerScripts.commit,
            keys: [lock.key, keys.state(channel: message.channel), keys.history(channel: message.channel),
                   message.stream, keys.deadSeqs(channel: message.channel)],
            arguments: arguments)
        return try CommitOutcome.parse(reply)
    }

    static func decodeState(_ results: [Swift.Result<RESPValue, RedisError>], needsState: Bool, hasSeq: Bool) -> (ChannelState, Int64?) {
        var index = 0
        var state = ChannelState()
        var lastSeq: Int64?
        if needsState, index < results.count, case .success(let reply) = results[index] {
            let flat = reply.array?.compactMap(\.string) ?? []
            for i in stride(from: 0, to: flat.count - 1, by: 2) { state.fields[flat[i]] = flat[i + 1] }
            lastSeq = state.lastSeq
            index += 1
        } else if !needsState, hasSeq, index < results.count, case .success(let reply) = results[index] {
            lastSeq = reply.int ?? 0
            index += 1
        }
        if hasSeq, var last = lastSeq, index < results.count, case .success(let reply) = results[index] {
            // Dead-lettered seqs just above last_seq count as done, as the commit script treats them.
            let dead = Set(reply.array?.compactMap(\.int) ?? [])
            while last < InboundMessage.maxSeq, dead.contains(last + 1) { last += 1 }
            lastSeq = last
        }
        return (state, lastSeq)
    }
}
