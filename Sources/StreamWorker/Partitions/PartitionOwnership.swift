/// One worker's view of the partitions it owns, as a pure state machine: no I/O and no clock of its
/// own. The coordinator feeds it the desired assignment, lease results and in-flight counts, and
/// carries out the actions it returns.
///
/// A partition that should move is shed cooperatively: the owner stops reading it, lets its
/// in-flight messages finish (or abandons them after `shedTimeout`; they stay pending), and only
/// then (or after twice `shedTimeout` at most) releases the lease, which the new owner is waiting for. A partition is never taken from a
/// live owner (leases are claimed with NX), and a freshly acquired one is kept for at least
/// `minHold`, so membership flaps do not bounce partitions around.
public struct PartitionOwnership<Instant: InstantProtocol>: Sendable where Instant.Duration == Duration {
    public enum Phase: Sendable, Equatable {
        /// Desired here; waiting for the lease.
        case acquiring
        /// Lease held, partition being read.
        case owned(since: Instant)
        /// Lease held, no longer read; waiting for its in-flight messages.
        case shedding(since: Instant, abandoned: Bool)
    }

    public enum Action: Sendable, Equatable {
        /// Start waiting for the partition's lease (it is claimed as soon as it is free).
        case acquire(Int)
        /// Stop waiting for the lease.
        case cancelAcquire(Int)
        /// The lease is ours: take over the partition's pending entries, then read it.
        case startReading(Int)
        /// Read it no more, and drop its queued (not yet running) messages.
        case stopReading(Int)
        /// Shedding took too long: cancel its running messages (they stay pending for the next owner).
        case abandonInFlight(Int)
        /// Give the lease up.
        case release(Int)
    }

    public let minHold: Duration
    public let shedTimeout: Duration
    public private(set) var phases: [Int: Phase] = [:]
    public private(set) var isShuttingDown = false

    public init(minHold: Duration, shedTimeout: Duration) {
        self.minHold = minHold
        self.shedTimeout = shedTimeout
    }

    /// Partitions whose messages are read now.
    public var reading: Set<Int> {
        Set(phases.compactMap { p, phase in if case .owned = phase { return p } else { return nil } })
    }

    /// Partitions whose lease is held (read or being shed).
    public var held: Set<Int> {
        Set(phases.compactMap { p, phase in phase == .acquiring ? nil : p })
    }

    /// Nothing to wait for: every desired partition is read, and nothing else is held or sought.
    /// Reconciling can then wait for the next heartbeat or membership change.
    public func isSettled(desired: Set<Int>) -> Bool {
        phases.count == desired.count && reading == desired
    }

    /// Reconciles with the desired assignment. Called on every heartbeat, and often while shedding.
    public mutating func reconcile(desired: Set<Int>, now: Instant, inFlight: (Int) -> Int) -> [Action] {
        var actions: [Action] = []
        if !isShuttingDown {
            for p in desired.sorted() {
                switch phases[p] {
                case nil:
                    phases[p] = .acquiring
                    actions.append(.acquire(p))
                case .shedding(let since, _):
                    // Wanted back before it was let go: read it again.
                    phases[p] = .owned(since: since)
                    actions.append(.startReading(p))
                case .acquiring, .owned:
                    break
                }
            }
        }
        for p in phases.keys.sorted() where isShuttingDown || !desired.contains(p) {
            switch phases[p]! {
            case .acquiring:
                phases[p] = nil
                actions.append(.cancelAcquire(p))
            case .owned(let since):
                guard isShuttingDown || since.duration(to: now) >= minHold else { continue }
                phases[p] = .shedding(since: now, abandoned: false)
                actions.append(.stopReading(p))
            case .shedding:
                break
            }
        }
        for p in phases.keys.sorted() {
            guard case .shedding(let since, let abandoned) = phases[p]! else { continue }
            // Bounded even when a cancelled message does not stop (a handler that ignores
            // cancellation): its channel's lock and fence still guard it, and the partition's
            // next owner must not wait for it.
            if inFlight(p) == 0 || (abandoned && since.duration(to: now) >= shedTimeout * 2) {
                phases[p] = nil
                actions.append(.release(p))
            } else if !abandoned, since.duration(to: now) >= shedTimeout {
                phases[p] = .shedding(since: since, abandoned: true)
                actions.append(.abandonInFlight(p))
            }
        }
        return actions
    }

    /// The lease was claimed. Given straight back if it is no longer wanted (the wait was
    /// cancelled meanwhile, or shutdown began).
    public mutating func acquired(_ p: Int, now: Instant) -> [Action] {
        if phases[p] == .acquiring, !isShuttingDown {
            phases[p] = .owned(since: now)
            return [.startReading(p)]
        }
        if phases[p] == .acquiring { phases[p] = nil }
        return phases[p] == nil ? [.release(p)] : []
    }

    /// The lease ended without us giving it up (expired, stolen, renewals failing).
    public mutating func lost(_ p: Int) -> [Action] {
        switch phases[p] {
        case .owned?:
            phases[p] = nil
            return [.stopReading(p)]
        case .shedding?:
            phases[p] = nil
            return []
        case .acquiring?, nil:
            return []
        }
    }

    /// Graceful shutdown: everything is shed at once, without the minimum hold.
    public mutating func shutDown(now: Instant, inFlight: (Int) -> Int) -> [Action] {
        isShuttingDown = true
        return reconcile(desired: [], now: now, inFlight: inFlight)
    }
}
