import DistributedLocking
import Testing

/// The lease's decisions, on a synthetic clock: no I/O, no waiting.
@Suite struct LeaseTests {
    let t0 = ContinuousClock.now

    @Test func validityEndsAtSendTimePlusTTLMinusDrift() {
        let lease = Lease(claimSentAt: t0, ttl: .seconds(10), maxRenewals: 0)
        #expect(lease.validUntil == t0 + .seconds(10) - .milliseconds(102))
        #expect(lease.isValid(at: t0 + .seconds(9)))
        #expect(!lease.isValid(at: t0 + .seconds(10)))
    }

    @Test func aRenewalExtendsFromItsSendTimeNotItsReplyTime() {
        var lease = Lease(claimSentAt: t0, ttl: .seconds(3), maxRenewals: 0)
        lease.renewed(sentAt: t0 + .seconds(1))
        #expect(lease.validUntil == t0 + .seconds(4) - Lease.drift(for: .seconds(3)))
        #expect(lease.renewals == 1)
    }

    @Test func theWatchdogRenewsEveryThirdOfTheTTL() {
        let lease = Lease(claimSentAt: t0, ttl: .seconds(3), maxRenewals: 0)
        #expect(lease.decision(at: t0, autoRenew: true) == .sleep(until: t0 + .seconds(1)))
        #expect(lease.decision(at: t0 + .seconds(1), autoRenew: true) == .renew)
    }

    @Test func withoutAutoRenewTheWatchdogOnlyWatchesTheDeadline() {
        let lease = Lease(claimSentAt: t0, ttl: .seconds(3), maxRenewals: 0)
        #expect(lease.decision(at: t0 + .seconds(2), autoRenew: false) == .sleep(until: lease.validUntil))
        #expect(lease.decision(at: t0 + .seconds(3), autoRenew: false) == .lost(.expired))
    }

    @Test func failingRenewalsEndInExpiryAtTheDeadline() {
        var lease = Lease(claimSentAt: t0, ttl: .seconds(3), maxRenewals: 0)
        lease.renewalFailed(at: t0 + .seconds(1))
        lease.renewalFailed(at: t0 + .seconds(2))
        #expect(lease.decision(at: t0 + .milliseconds(2900), autoRenew: true) != .lost(.expired))
        #expect(lease.decision(at: t0 + .seconds(3), autoRenew: true) == .lost(.expired))
    }

    @Test func aFailedRenewalIsRetriedSoonerButNotPastTheDeadline() {
        var lease = Lease(claimSentAt: t0, ttl: .seconds(3), maxRenewals: 0)
        lease.renewalFailed(at: t0 + .seconds(1))
        #expect(lease.nextRenewal == t0 + .milliseconds(1500))
        lease.renewalFailed(at: t0 + .milliseconds(2900))
        #expect(lease.nextRenewal == lease.validUntil)
    }

    @Test func theRenewalLimitGivesTheLeaseUp() {
        var lease = Lease(claimSentAt: t0, ttl: .seconds(3), maxRenewals: 2)
        lease.renewed(sentAt: t0 + .seconds(1))
        lease.renewed(sentAt: t0 + .seconds(2))
        #expect(lease.renewalLimitReached)
        #expect(lease.decision(at: t0 + .seconds(3), autoRenew: true) == .lost(.renewalLimit))
    }

    @Test func zeroOrNegativeMaxRenewalsMeansUnlimited() {
        var lease = Lease(claimSentAt: t0, ttl: .seconds(3), maxRenewals: 0)
        for i in 1...1000 { lease.renewed(sentAt: t0 + .seconds(i)) }
        #expect(!lease.renewalLimitReached)
        #expect(!Lease(claimSentAt: t0, ttl: .seconds(3), maxRenewals: -1).renewalLimitReached)
    }

    @Test func companionKeysDeriveFromTheLockKey() {
        #expect(LockKeys.fenceKey(forLock: "sg:lock:channel:42") == "sg:fence:channel:42")
        #expect(LockKeys.fenceKey(forLock: "custom") == "custom:fence")
        #expect(LockKeys.fenceKey(forLock: "a:lock:b:lock:c") == "a:fence:b:lock:c")
        #expect(LockKeys.fenceKey(forLock: "lock:x") == "fence:x")
        #expect(LockKeys.fenceKey(forLock: "é:lock:ü") == "é:fence:ü")
        #expect(LockKeys.metricPrefix(forLock: "sg:lock:channel:42") == "sg:lock:channel")
    }

    @Test func theMetricPrefixNeverHoldsPartOfAnIdWithColons() {
        #expect(LockKeys.metricPrefix(forLock: "sg:lock:channel:a:b:c") == "sg:lock:channel")
        #expect(LockKeys.metricPrefix(forLock: "app:v2:lock:channel:x:y") == "app:v2:lock:channel")
        #expect(LockKeys.metricPrefix(forLock: "sg:lock:bare") == "sg:lock")
        #expect(LockKeys.metricPrefix(forLock: "custom") == "custom")
    }

    @Test func stateUpdatesRejectStoreManagedAndConflictingFields() {
        #expect(throws: StateUpdateError.reservedField("fence")) { try StateUpdate(setFields: ["fence": "9"]).validate() }
        #expect(throws: StateUpdateError.conflictingField("n")) { try StateUpdate(setFields: ["n": "1"], increment: ["n": 1]).validate() }
        #expect(throws: StateUpdateError.emptyFieldName) { try StateUpdate(increment: ["": 1]).validate() }
        #expect(throws: StateUpdateError.invalidListCap(0)) { try StateUpdate(append: ["x"], listCap: 0).validate() }
        #expect(throws: StateUpdateError.incrementTooLarge("n", Int64.max)) { try StateUpdate(increment: ["n": .max]).validate() }
        let counters = Dictionary(uniqueKeysWithValues: (0...StateUpdate.maxIncrements).map { ("n\($0)", Int64(1)) })
        #expect(throws: StateUpdateError.tooManyIncrements(StateUpdate.maxIncrements + 1)) { try StateUpdate(increment: counters).validate() }
        #expect(throws: Never.self) { try StateUpdate(increment: counters.filter { $0.key != "n0" }).validate() }
        #expect(throws: Never.self) { try StateUpdate(increment: ["n": StateUpdate.maxIncrement]).validate() }
    }

    @Test func stateUpdatesEncodeDeterministically() {
        let update = StateUpdate(setFields: ["b": "2", "a": "1"], increment: ["count": 1], append: ["x"], listCap: 5)
        #expect(update.scriptArguments == ["2", "1", "1", "5", "a", "1", "b", "2", "count", "1", "x"])
    }
}
