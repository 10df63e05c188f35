import StreamWorker
import Testing

/// The shedding state machine, driven with a test clock: every event in every phase.
@Suite struct PartitionOwnershipTests {
    struct TestInstant: InstantProtocol {
        var offset: Duration
        func advanced(by duration: Duration) -> TestInstant { TestInstant(offset: offset + duration) }
        func duration(to other: TestInstant) -> Duration { other.offset - offset }
        static func < (a: TestInstant, b: TestInstant) -> Bool { a.offset < b.offset }
    }

    typealias Ownership = PartitionOwnership<TestInstant>
    let t0 = TestInstant(offset: .zero)
    func at(_ seconds: Int) -> TestInstant { t0.advanced(by: .seconds(seconds)) }
    func machine() -> Ownership { Ownership(minHold: .seconds(3), shedTimeout: .seconds(10)) }
    let idle: (Int) -> Int = { _ in 0 }

    @Test func aDesiredPartitionIsAcquiredThenRead() {
        var o = machine()
        #expect(o.reconcile(desired: [1, 2], now: t0, inFlight: idle) == [.acquire(1), .acquire(2)])
        #expect(o.reconcile(desired: [1, 2], now: t0, inFlight: idle) == [], "acquiring is not repeated")
        #expect(o.acquired(1, now: t0) == [.startReading(1)])
        #expect(o.reading == [1])
        #expect(o.held == [1])
    }

    @Test func settledOnlyWhenEveryDesiredPartitionIsReadAndNothingElseHeld() {
        var o = machine()
        #expect(o.isSettled(desired: []))
        #expect(!o.isSettled(desired: [1, 2]), "nothing acquired yet")
        _ = o.reconcile(desired: [1, 2], now: t0, inFlight: idle)
        _ = o.acquired(1, now: t0)
        #expect(!o.isSettled(desired: [1, 2]), "2 is still being acquired")
        _ = o.acquired(2, now: t0)
        #expect(o.isSettled(desired: [1, 2]))
        _ = o.reconcile(desired: [1], now: at(5), inFlight: { $0 == 2 ? 1 : 0 })
        #expect(!o.isSettled(desired: [1]), "2 is being shed")
        _ = o.reconcile(desired: [1], now: at(6), inFlight: idle)
        #expect(o.isSettled(desired: [1]))
    }

    @Test func aPartitionNoLongerDesiredWhileAcquiringIsNotWaitedFor() {
        var o = machine()
        _ = o.reconcile(desired: [1], now: t0, inFlight: idle)
        #expect(o.reconcile(desired: [], now: t0, inFlight: idle) == [.cancelAcquire(1)])
        #expect(o.acquired(1, now: t0) == [.release(1)], "a claim that raced the cancel is given back")
        #expect(o.held.isEmpty)
    }

    @Test func anOwnedPartitionIsKeptForTheMinimumHold() {
        var o = machine()
        _ = o.reconcile(desired: [1], now: t0, inFlight: idle)
        _ = o.acquired(1, now: t0)
        #expect(o.reconcile(desired: [], now: at(2), inFlight: idle) == [])
        #expect(o.reading == [1])
    }

    @Test func sheddingStopsReadingThenReleasesOnceInFlightIsDone() {
        var o = machine()
        _ = o.reconcile(desired: [1], now: t0, inFlight: idle)
        _ = o.acquired(1, now: t0)
        var inFlight = 2
        #expect(o.reconcile(desired: [], now: at(3), inFlight: { _ in inFlight }) == [.stopReading(1)])
        #expect(o.reading.isEmpty)
        #expect(o.held == [1], "the lease is kept while its messages finish")
        #expect(o.reconcile(desired: [], now: at(4), inFlight: { _ in inFlight }) == [])
        inFlight = 0
        #expect(o.reconcile(desired: [], now: at(5), inFlight: { _ in inFlight }) == [.release(1)])
        #expect(o.held.isEmpty)
    }

    @Test func sheddingAbandonsInFlightOnceAfterTheTimeout() {
        var o = machine()
        _ = o.reconcile(desired: [1], now: t0, inFlight: idle)
        _ = o.acquired(1, now: t0)
        let busy: (Int) -> Int = { _ in 1 }
        _ = o.reconcile(desired: [], now: at(3), inFlight: busy)
        #expect(o.reconcile(desired: [], now: at(13), inFlight: busy) == [.abandonInFlight(1)])
        #expect(o.reconcile(desired: [], now: at(14), inFlight: busy) == [], "abandoned once")
        #expect(o.reconcile(desired: [], now: at(15), inFlight: idle) == [.release(1)])
    }

    @Test func aShedEndsWithinTwiceTheTimeoutEvenIfAbandonedMessagesDoNotStop() {
        var o = machine()
        _ = o.reconcile(desired: [1], now: t0, inFlight: idle)
        _ = o.acquired(1, now: t0)
        let stuck: (Int) -> Int = { _ in 1 }
        _ = o.reconcile(desired: [], now: at(3), inFlight: stuck)
        #expect(o.reconcile(desired: [], now: at(13), inFlight: stuck) == [.abandonInFlight(1)])
        #expect(o.reconcile(desired: [], now: at(22), inFlight: stuck) == [], "still waiting for the cancelled messages")
        #expect(o.reconcile(desired: [], now: at(23), inFlight: stuck) == [.release(1)])
        #expect(o.held.isEmpty)
    }

    @Test func aPartitionWantedBackWhileSheddingIsReadAgain() {
        var o = machine()
        _ = o.reconcile(desired: [1], now: t0, inFlight: idle)
        _ = o.acquired(1, now: t0)
        _ = o.reconcile(desired: [], now: at(3), inFlight: { _ in 1 })
        #expect(o.reconcile(desired: [1], now: at(4), inFlight: { _ in 1 }) == [.startReading(1)])
        #expect(o.reading == [1])
    }

    @Test func aLostLeaseStopsReadingAtOnceAndIsAcquiredAgainIfStillDesired() {
        var o = machine()
        _ = o.reconcile(desired: [1], now: t0, inFlight: idle)
        _ = o.acquired(1, now: t0)
        #expect(o.lost(1) == [.stopReading(1)])
        #expect(o.held.isEmpty)
        #expect(o.reconcile(desired: [1], now: at(1), inFlight: idle) == [.acquire(1)])
    }

    @Test func aLeaseLostWhileSheddingNeedsNoRelease() {
        var o = machine()
        _ = o.reconcile(desired: [1], now: t0, inFlight: idle)
        _ = o.acquired(1, now: t0)
        _ = o.reconcile(desired: [], now: at(3), inFlight: { _ in 1 })
        #expect(o.lost(1) == [])
        #expect(o.reconcile(desired: [], now: at(4), inFlight: idle) == [])
    }

    @Test func lossOfAPartitionNotHeldChangesNothing() {
        var o = machine()
        #expect(o.lost(5) == [])
        _ = o.reconcile(desired: [5], now: t0, inFlight: idle)
        #expect(o.lost(5) == [], "still acquiring")
        #expect(o.phases[5] == .acquiring)
    }

    @Test func shutdownShedsEverythingAtOnceAndAcquiresNothingMore() {
        var o = machine()
        _ = o.reconcile(desired: [1, 2, 3], now: t0, inFlight: idle)
        _ = o.acquired(1, now: t0)
        _ = o.acquired(2, now: t0)
        let actions = o.shutDown(now: t0, inFlight: { $0 == 1 ? 1 : 0 })
        #expect(actions == [.stopReading(1), .stopReading(2), .cancelAcquire(3), .release(2)])
        #expect(o.reconcile(desired: [1, 2, 3], now: at(1), inFlight: idle) == [.release(1)], "nothing is acquired again")
        #expect(o.acquired(3, now: at(1)) == [.release(3)])
    }
}
