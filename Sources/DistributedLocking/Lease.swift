/// Why a holder stopped holding.
public enum LeaseLossCause: String, Sendable, Equatable, CaseIterable, CustomStringConvertible {
    /// A renewal found the key gone or owned by another token.
    case stolen
    /// The local validity deadline passed without a successful renewal (Redis unreachable or slow, or the process was paused).
    case expired
    /// The holder reached `maxRenewals` and gave the lease up.
    case renewalLimit = "renewal_limit"

    public var description: String { rawValue }
}

/// The holder's own view of its lease, on a monotonic clock. No I/O: the watchdog feeds it
/// the send times of successful claims and renewals and asks it what to do next.
public struct Lease: Sendable, Equatable {
    public typealias Instant = ContinuousClock.Instant

    public let ttl: Duration
    /// `maxRenewals <= 0` means unlimited.
    public let maxRenewals: Int
    /// When the lease certainly still holds: last successful send time + TTL − drift.
    public private(set) var validUntil: Instant
    public private(set) var renewals = 0
    /// When the watchdog should next renew.
    public private(set) var nextRenewal: Instant

    public init(claimSentAt sentAt: Instant, ttl: Duration, maxRenewals: Int) {
        self.ttl = ttl
        self.maxRenewals = maxRenewals
        self.validUntil = sentAt + ttl - Self.drift(for: ttl)
        self.nextRenewal = sentAt + Self.renewInterval(for: ttl)
    }

    /// Clock drift and expiry-precision allowance, as Redlock does: 1% of the TTL plus 2 ms.
    public static func drift(for ttl: Duration) -> Duration {
        ttl / 100 + .milliseconds(2)
    }

    /// Renew every third of the TTL, so two renewals can fail before the lease runs out.
    public static func renewInterval(for ttl: Duration) -> Duration {
        max(ttl / 3, .milliseconds(1))
    }

    public func isValid(at now: Instant) -> Bool {
        now < validUntil
    }

    public var renewalLimitReached: Bool {
        maxRenewals > 0 && renewals >= maxRenewals
    }

    /// A renewal sent at `sentAt` succeeded.
    public mutating func renewed(sentAt: Instant) {
        renewals += 1
        validUntil = max(validUntil, sentAt + ttl - Self.drift(for: ttl))
        nextRenewal = sentAt + Self.renewInterval(for: ttl)
    }

    /// A renewal failed without an answer; try again sooner, but never past the deadline.
    public mutating func renewalFailed(at now: Instant) {
        nextRenewal = min(now + Self.renewInterval(for: ttl) / 2, validUntil)
    }

    /// What the watchdog should do when it wakes at `now`.
    public func decision(at now: Instant, autoRenew: Bool) -> WatchdogDecision {
        if !isValid(at: now) { return .lost(.expired) }
        guard autoRenew else { return .sleep(until: validUntil) }
        if now < nextRenewal { return .sleep(until: min(nextRenewal, validUntil)) }
        if renewalLimitReached { return .lost(.renewalLimit) }
        return .renew
    }
}

public enum WatchdogDecision: Sendable, Equatable {
    case sleep(until: ContinuousClock.Instant)
    case renew
    case lost(LeaseLossCause)
}
