import Foundation
import Logging
import RedisClient

/// A lease on one Redis key, held by one instance at a time across every process.
///
/// Ported from the original Python lock (token ownership, re-entrancy, watchdog renewal,
/// abort on loss) and hardened: every fresh claim draws a monotonic ``fence``, the holder
/// keeps a local validity deadline so it gives up when renewals stop succeeding, waiters are
/// woken by a pub/sub notification instead of polling, and without Redis the process-local
/// fallback really excludes.
///
/// ```swift
/// let lock = DistributedLock(client: redis, key: "sg:lock:channel:42", ttl: .seconds(10), autoRenew: true, maxRenewals: 0)
/// try await lock.withLock {
///     // runs while held; cancelled if the lease is lost
/// }
/// ```
public actor DistributedLock {
    public nonisolated let key: String
    /// Counter key whose INCR yields the fence (never expires).
    public nonisolated let fenceKey: String
    /// Random UUID4 identifying this instance as owner.
    public nonisolated let token: String
    public nonisolated let ttl: Duration
    public nonisolated let autoRenew: Bool
    /// `<= 0` means unlimited renewals.
    public nonisolated let maxRenewals: Int
    public nonisolated let abortOnLoss: Bool

    private let client: RedisClient?
    private let baseLogger: Logger
    /// Built on first use: setting metadata re-renders it in most handlers, and a lock is made per
    /// message while most locks never log.
    private func debug(_ message: @autoclosure () -> Logger.Message, metadata: @autoclosure () -> Logger.Metadata? = nil) {
        if baseLogger.logLevel <= .debug { logger.debug(message(), metadata: metadata()) }
    }

    private lazy var logger: Logger = {
        var logger = baseLogger
        logger[metadataKey: "lock.key"] = .string(key)
        logger[metadataKey: "lock.token"] = .string(String(token.prefix(8)))
        return logger
    }()
    private let metrics: LockMetrics
    private let releaseChannel: String

    private var depth = 0
    private var lease: Lease?
    private var generation = 0
    private var watchdog: Task<Void, Never>?
    /// The generation whose watchdog start is waiting in the shared scheduler.
    private var watchdogScheduledFor: Int?
    private var lossSignal = LossSignal()
    private var heldSince: ContinuousClock.Instant?
    /// Set while the outermost release talks to Redis, so a concurrent acquire on this instance waits for it.
    private var releasing: [CheckedContinuation<Void, Never>]?

    /// The fence of the current (or last) claim; grows with every fresh acquire of this key.
    public private(set) var fence: Int64?
    /// Keys this instance really deleted from Redis (re-entrant and local releases don't count).
    public private(set) var keysReleasedCount = 0
    /// Why the last lease ended early, if it did.
    public private(set) var lastLoss: LeaseLossCause?
    /// Successful watchdog renewals of the current lease.
    public var renewals: Int { lease?.renewals ?? 0 }

    /// Creates the lock. No I/O happens until ``acquire()``.
    /// - Parameter client: `nil` degrades to a process-local lock.
    public init(
        client: RedisClient?,
        key: String,
        ttl: Duration = .seconds(30),
        autoRenew: Bool = false,
        maxRenewals: Int = 5,
        abortOnLoss: Bool = true,
        fenceKey: String? = nil,
        logger: Logger = Logger(label: "sg.lock")
    ) {
        self.client = client
        self.key = key
        self.fenceKey = fenceKey ?? LockKeys.fenceKey(forLock: key)
        self.token = Self.randomUUID4()
        self.ttl = ttl
        self.autoRenew = autoRenew
        self.maxRenewals = maxRenewals
        self.abortOnLoss = abortOnLoss
        self.releaseChannel = LockKeys.releaseChannel(forLock: key)
        self.metrics = LockMetrics.forPrefix(LockKeys.metricPrefix(forLock: key))
        self.baseLogger = logger
    }

    deinit {
        watchdog?.cancel()
    }

    /// Held, not lost, and (with Redis) within the local validity deadline.
    public var isHeld: Bool {
        guard depth > 0, lossSignal.cause == nil else { return false }
        return lease?.isValid(at: .now) ?? true
    }

    // MARK: Acquiring

    /// Claims the lock once without waiting. Re-entrant: a holder's second call only counts up.
    /// Returns false on contention (logged at info) or when Redis cannot be reached (logged as a warning).
    public func acquire() async -> Bool {
        await attempt(quiet: false).acquired
    }

    /// Waits until the lock is free and claims it; false when `timeout` passes or the task is cancelled.
    ///
    /// Waiters subscribe to the key's release channel before retrying, so a release is never
    /// missed; `pollInterval` only bounds how long a missed notification could delay a retry,
    /// and each wait is further capped by the holder's remaining PTTL.
    public func acquireBlocking(pollInterval: Duration = .seconds(1), timeout: Duration? = nil) async -> Bool {
        await acquireBlocking(pollInterval: pollInterval, timeout: timeout, reading: []) != nil
    }

    /// Like ``acquireBlocking(pollInterval:timeout:)``, and the claim that succeeds also runs
    /// `reading` in the same round trip, right after the claim; returns their results, or nil
    /// when the lock was not acquired. Use it to load the state the lock protects.
    /// A re-entrant acquire sends nothing and returns no results.
    public func acquireBlocking(
        pollInterval: Duration = .seconds(1),
        timeout: Duration? = nil,
        reading: [RedisCommand]
    ) async -> [Result<RESPValue, RedisError>]? {
        let start = ContinuousClock.now
        let deadline = timeout.map { start + $0 }
        var subscription: RedisSubscription?
        defer { subscription?.cancel() }
        var announced = false
        while true {
            let outcome = await attempt(quiet: true, reading: reading)
            if case .acquired(let reads) = outcome {
                metrics.acquireWait.recordNanoseconds(start.duration(to: .now).nanoseconds)
                return reads
            }
            if !announced {
                logger.info("Lock contention, waiting for release")
                announced = true
            }
            if Task.isCancelled { return nil }
            let now = ContinuousClock.now
            if let deadline, now >= deadline {
                logger.warning("Lock acquisition timed out", metadata: ["timeout_ms": "\(timeout!.redisMilliseconds)"])
                return nil
            }
            var wait = pollInterval
            if case .contended(let pttl?) = outcome { wait = min(wait, pttl + .milliseconds(1)) }
            if let deadline { wait = min(wait, now.duration(to: deadline)) }
            guard let client else {
                await LocalLockTable.shared.waitForRelease(key, timeout: wait)
                continue
            }
            if subscription == nil, let subscribed = try? await client.subscribe(shardChannel: releaseChannel) {
                // Retry at once: a release between our last attempt and the subscription is not announced to us.
                subscription = subscribed
                continue
            }
            if let current = subscription {
                if await current.next(timeout: wait) == .reconnected {
                    // Re-checked by the next attempt, on a new subscription: after a failover or a
                    // slot move this one no longer hears the channel, and waiting on it would
                    // leave only the poll to notice the release.
                    current.cancel()
                    subscription = nil
                }
            } else {
                try? await Task.sleep(for: wait)
            }
        }
    }

    /// Takes on a claim that a script made with this lock's ``token`` (for example one claim of a
    /// batch), as if ``acquire()`` had made it: the lease runs from `claimSentAt` (when the claim
    /// was sent, or earlier), the watchdog starts, and ``release()`` and ``runWhileHeld(_:)`` work
    /// as usual. Returns false, changing nothing, when this instance already holds or is releasing.
    public func adoptClaim(fence: Int64, claimSentAt: ContinuousClock.Instant) -> Bool {
        guard client != nil, depth == 0, releasing == nil else { return false }
        becomeHolder(fence: fence, claimSentAt: claimSentAt)
        metrics.acquireWait.recordNanoseconds(claimSentAt.duration(to: .now).nanoseconds)
        return true
    }

    private enum Attempt {
        case acquired([Result<RESPValue, RedisError>])
        case contended(pttl: Duration?)
        case failed

        var acquired: Bool {
            if case .acquired = self { return true }
            return false
        }
    }

    private func attempt(quiet: Bool, reading: [RedisCommand] = []) async -> Attempt {
        // No claim may overtake a compare-and-delete of the same token still in flight.
        while releasing != nil {
            await withCheckedContinuation { releasing!.append($0) }
        }
        if depth > 0 {
            // A hold whose lease is gone (lost, or past its validity) is not re-entered: the
            // caller would believe it holds what a new holder may have by now. It cannot be
            // claimed afresh either until the outer hold ends, so this attempt fails.
            guard isHeld else {
                debug("Not re-entering a lost lease", metadata: ["depth": "\(depth)"])
                return .failed
            }
            depth += 1
            debug("Re-entered lock", metadata: ["depth": "\(depth)"])
            return .acquired([])
        }
        guard let client else {
            if let fence = LocalLockTable.shared.tryAcquire(key, token: token) {
                becomeHolder(fence: fence, claimSentAt: .now)
                return .acquired([])
            }
            contended(quiet: quiet)
            return .contended(pttl: nil)
        }
        let sentAt = ContinuousClock.now
        do {
            let (reply, reads) = try await client.evaluate(
                LockScripts.acquire, keys: [key, fenceKey], arguments: [token, ttl.redisMilliseconds], followedBy: reading)
            guard let items = reply.array, items.count == 2, let claimed = items[0].int, let value = items[1].int else {
                logger.warning("Unexpected reply to lock claim", metadata: ["reply": "\(reply)"])
                return .failed
            }
            if depth > 0 {
                // A concurrent call on this instance claimed meanwhile: this is a re-entrant hold,
                // unless that hold's lease is gone already.
                guard isHeld else { return .failed }
                depth += 1
                return .acquired(reads)
            }
            if claimed == 1 {
                becomeHolder(fence: value, claimSentAt: sentAt)
                return .acquired(reads)
            }
            contended(quiet: quiet)
            return .contended(pttl: value > 0 ? .milliseconds(value) : nil)
        } catch {
            logger.warning("Failed to acquire lock", metadata: ["error": "\(error)"])
            return .failed
        }
    }

    private func contended(quiet: Bool) {
        metrics.contention.increment()
        if quiet {
            debug("Lock contention, retrying")
        } else {
            logger.info("Lock contention, skipping execution")
        }
    }

    private func becomeHolder(fence: Int64, claimSentAt: ContinuousClock.Instant) {
        depth = 1
        self.fence = fence
        lastLoss = nil
        generation += 1
        lossSignal = LossSignal()
        heldSince = .now
        debug("Acquired lock", metadata: ["fence": "\(fence)"])
        guard client != nil else { return }
        lease = Lease(claimSentAt: claimSentAt, ttl: ttl, maxRenewals: maxRenewals)
        if autoRenew { startWatchdog() }
    }

    /// Without auto-renewal the deadline is still enforced: lazily by ``isHeld``, and actively
    /// (so `withLock` can abort its body) once someone waits for a loss.
    private func startWatchdog() {
        guard watchdog == nil, watchdogScheduledFor != generation, let lease else { return }
        // Until the first decision is due there is nothing to do: leave it to the shared scheduler.
        if case .sleep(let until) = lease.decision(at: .now, autoRenew: autoRenew) {
            watchdogScheduledFor = generation
            WatchdogScheduler.shared.schedule(self, generation: generation, at: until)
            return
        }
        runWatchdog()
    }

    /// Called by the scheduler when the first decision of `generation` is due.
    func watchdogDue(generation: Int) {
        guard generation == self.generation, watchdog == nil, lease != nil else { return }
        runWatchdog()
    }

    private func runWatchdog() {
        let generation = generation
        // Weak, and sleeping outside the actor: a lock dropped without release() must not renew forever.
        watchdog = Task { [weak self] in
            while !Task.isCancelled {
                guard let step = await self?.watchdogStep(generation: generation) else { return }
                switch step {
                case .stop: return
                case .again: continue
                case .sleep(let until):
                    do { try await Task.sleep(until: until, clock: .continuous) } catch { return }
                }
            }
        }
    }

    // MARK: Watchdog

    private enum WatchdogStep: Sendable {
        case sleep(until: ContinuousClock.Instant)
        case again
        case stop
    }

    /// One watchdog decision: renews (with `autoRenew`) every ttl/3 and enforces the local deadline either way.
    private func watchdogStep(generation: Int) async -> WatchdogStep {
        guard generation == self.generation, let lease, lossSignal.cause == nil else { return .stop }
        switch lease.decision(at: .now, autoRenew: autoRenew) {
        case .sleep(let until):
            return .sleep(until: until)
        case .lost(let cause):
            await loseLease(cause, generation: generation)
            return .stop
        case .renew:
            let sentAt = ContinuousClock.now
            let outcome = await waitForResult(until: lease.validUntil) { [client, key, token, ttl] in
                do {
                    let reply = try await client!.evaluate(LockScripts.renew, keys: [key], arguments: [token, ttl.redisMilliseconds])
                    return reply.int == 1 ? RenewOutcome.renewed : .notOwned
                } catch {
                    return .failed("\(error)")
                }
            }
            guard generation == self.generation, lossSignal.cause == nil else { return .stop }
            switch outcome {
            case .renewed:
                self.lease?.renewed(sentAt: sentAt)
                metrics.renewals.increment()
                debug("Lease renewed", metadata: ["renewals": "\(self.lease?.renewals ?? 0)", "max": "\(maxRenewals)"])
            case .notOwned:
                await loseLease(.stolen, generation: generation)
                return .stop
            case .failed(let error):
                logger.warning("Lease renewal failed", metadata: ["error": "\(error)"])
                self.lease?.renewalFailed(at: .now)
            case nil:
                break  // the wait hit the validity deadline; the next decision declares the loss
            }
            return .again
        }
    }

    private enum RenewOutcome: Sendable {
        case renewed, notOwned, failed(String)
    }

    private func loseLease(_ cause: LeaseLossCause, generation: Int) async {
        guard generation == self.generation, lossSignal.cause == nil else { return }
        lastLoss = cause
        metrics.leaseLost(cause)
        switch cause {
        case .stolen: logger.error("Lease lost: key deleted or taken by another holder")
        case .expired: logger.error("Lease lost: validity deadline passed without a successful renewal")
        case .renewalLimit: logger.warning("Lease given up: renewal limit reached", metadata: ["max": "\(maxRenewals)"])
        }
        if abortOnLoss { logger.error("Aborting the work running under the lock") }
        // Mark the delete as in flight before anyone hears of the loss, so release() waits for it.
        if cause == .renewalLimit { releasing = releasing ?? [] }
        lossSignal.fire(cause)
        if cause == .renewalLimit {
            // Giving up means letting the next holder in now rather than at expiry.
            if await deleteKeyIfOurs() { keysReleasedCount += 1 }
            finishReleasing()
        }
    }

    /// Waits until the current lease is lost; nil if the caller is cancelled first.
    public func waitForLoss() async -> LeaseLossCause? {
        guard depth > 0 else { return lastLoss }
        startWatchdog()
        return await lossSignal.wait()
    }

    // MARK: Releasing

    /// Releases one level. The outermost release deletes the key if this token still owns it
    /// (compare-and-delete) and wakes the waiters. Safe to call from a cancelled task: the
    /// delete still runs, and is retried on connection errors before the key is left to expire.
    public func release() async {
        guard depth > 0 else { return }
        if depth > 1 {
            depth -= 1
            debug("Released re-entered lock", metadata: ["depth": "\(depth)"])
            return
        }
        let cause = lossSignal.cause
        endHold()
        guard client != nil else {
            LocalLockTable.shared.release(key, token: token)
            return
        }
        // A stolen key is someone else's. A given-up one is being deleted by the watchdog:
        // wait for that, so the key is gone when release() returns.
        if cause == .stolen { return }
        if cause == .renewalLimit {
            while releasing != nil { await withCheckedContinuation { releasing!.append($0) } }
            return
        }
        releasing = releasing ?? []
        if await deleteKeyIfOurs() {
            keysReleasedCount += 1
            debug("Released lock")
        }
        finishReleasing()
    }

    private func finishReleasing() {
        let waiting = releasing ?? []
        releasing = nil
        waiting.forEach { $0.resume() }
    }

    /// Compare-and-delete, retried on connection errors. Pooled commands run to completion even
    /// if the caller is cancelled, and the retry pauses ignore cancellation, so a cancelled task
    /// still releases its key.
    private func deleteKeyIfOurs() async -> Bool {
        guard let client else { return false }
        var backoff = Duration.milliseconds(50)
        for attempt in 1...3 {
            do {
                let reply = try await client.evaluate(LockScripts.release, keys: [key], arguments: [token, releaseChannel])
                return reply.int == 1
            } catch let error as RedisError where error.isConnectionError && attempt < 3 {
                logger.warning("Lock release failed; retrying", metadata: ["error": "\(error)", "attempt": "\(attempt)"])
                await sleepIgnoringCancellation(backoff)
                backoff *= 2
            } catch {
                logger.error("Lock release not confirmed; the key will expire by its TTL", metadata: ["error": "\(error)"])
                return false
            }
        }
        return false
    }

    // MARK: Scoped use

    /// Acquires (waiting up to `timeout`), runs `body` while held (see ``runWhileHeld(_:)``), and always releases.
    ///
    /// If the lease is lost while `body` runs and `abortOnLoss` is set, `body` is cancelled
    /// and this throws ``LockError/leaseLost(key:cause:)`` once `body` has returned.
    public func withLock<T: Sendable>(
        timeout: Duration? = nil,
        _ body: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        guard await acquireBlocking(timeout: timeout) else {
            if Task.isCancelled { throw CancellationError() }
            throw LockError.acquireTimedOut(key: key)
        }
        do {
            let result = try await runWhileHeld(body)
            await release()
            return result
        } catch {
            await release()
            throw error
        }
    }

    /// Runs `body` while the (already acquired) lease holds. If the lease is lost and
    /// `abortOnLoss` is set, `body` is cancelled and this throws ``LockError/leaseLost(key:cause:)``
    /// once `body` has returned. Does not release.
    ///
    /// With `abortOnLoss`, `body` runs in a task of its own: it keeps the caller's task-local
    /// values and priority, not a task executor preference.
    public func runWhileHeld<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
        startWatchdog()
        guard abortOnLoss else { return try await runWhileHeld(cancellingOnLoss: {}, body) }
        // Lost already: the body's task is not started.
        if let cause = lossSignal.cause { throw LockError.leaseLost(key: key, cause: cause) }
        // One task that the loss cancels, not a group of the body and a loss waiter: every task
        // costs memory while the body works.
        let task = Self.start(body, cancelled: Task.isCancelled)
        return try await runWhileHeld(cancellingOnLoss: { task.cancel() }) {
            try await withTaskCancellationHandler { try await task.value } onCancel: { task.cancel() }
        }
    }

    /// Runs `body` in the caller's task while the (already acquired) lease holds, and throws
    /// ``LockError/leaseLost(key:cause:)`` once `body` has returned if the lease was lost
    /// meanwhile. Does not release.
    ///
    /// With `abortOnLoss`, a loss calls `cancel`, which must cancel the caller's task (a handle
    /// the caller owns): that task stays cancelled, so the caller goes on elsewhere. It saves the
    /// task ``runWhileHeld(_:)`` makes for `body`, which costs memory for as long as `body` runs.
    public func runWhileHeld<T: Sendable>(
        cancellingOnLoss cancel: @escaping @Sendable () -> Void, _ body: @Sendable () async throws -> T
    ) async throws -> T {
        startWatchdog()
        let signal = lossSignal
        guard abortOnLoss else { return try await body() }
        if let cause = signal.cause { throw LockError.leaseLost(key: key, cause: cause) }
        let handler = signal.onLoss(cancel)
        let result: Result<T, any Error>
        do { result = .success(try await body()) } catch { result = .failure(error) }
        if let handler { signal.removeHandler(handler) }
        // The loss sets its cause before it calls `cancel`: a caller that was cancelled by it learns so here.
        if let cause = signal.cause { throw LockError.leaseLost(key: key, cause: cause) }
        return try result.get()
    }

    /// Off the actor (a task made in its methods would start on it), with the caller's task-local
    /// values and priority.
    private nonisolated static func start<T: Sendable>(
        _ body: @escaping @Sendable () async throws -> T, cancelled: Bool
    ) -> Task<T, any Error> {
        Task {
            // A caller cancelled already: the body starts cancelled, as a child task would.
            if cancelled { withUnsafeCurrentTask { $0?.cancel() } }
            return try await body()
        }
    }

    /// The caller deleted the key itself (for example in a commit script that releases as its
    /// last step): stop the watchdog and forget the hold without another round trip.
    public func releasedExternally() {
        guard depth > 0 else { return }
        endHold()
        keysReleasedCount += 1
    }

    /// Local bookkeeping of the outermost release: stop the watchdog, record the hold time.
    private func endHold() {
        depth = 0
        watchdog?.cancel()
        watchdog = nil
        generation += 1
        if let heldSince { metrics.hold.recordNanoseconds(heldSince.duration(to: .now).nanoseconds) }
        heldSince = nil
        lease = nil
    }
}

extension Duration {
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}

/// Sleeps for `duration` even if the current task is cancelled (for cleanup that must finish).
func sleepIgnoringCancellation(_ duration: Duration) async {
    await withCheckedContinuation { continuation in
        Task.detached {
            try? await Task.sleep(for: duration)
            continuation.resume()
        }
    }
}

extension DistributedLock {
    /// A lowercase random UUID4. Foundation's `UUID()` opened /dev/urandom per call, and a lock is
    /// made per message; the system generator uses getrandom(2).
    static func randomUUID4() -> String {
        var generator = SystemRandomNumberGenerator()
        var high = generator.next() as UInt64
        var low = generator.next() as UInt64
        high = (high & ~0xF000) | 0x4000               // version 4
        low = (low & ~(0xC << 60)) | (0x8 << 60)       // RFC 4122 variant
        let hex = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(36)
        for (index, word) in [high, low].enumerated() {
            for nibble in 0..<16 {
                let position = index * 16 + nibble
                if position == 8 || position == 12 || position == 16 || position == 20 { out.append(UInt8(ascii: "-")) }
                out.append(hex[Int((word >> UInt64(60 - 4 * nibble)) & 0xF)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
