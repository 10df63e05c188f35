import StreamWorker
import Testing

@Suite struct DuplicateStreakTests {
    @Test func aWholeBatchOfDuplicatesIsReportedOncePerIntervalWithCounts() {
        var streak = DuplicateStreak(threshold: 3, interval: .seconds(30))
        let start = ContinuousClock.now
        #expect(streak.duplicate(channel: "a", now: start) == nil)
        #expect(streak.duplicate(channel: "b", now: start) == nil)
        #expect(streak.duplicate(channel: "a", now: start) == .init(duplicates: 3, channels: 2))
        for _ in 0..<10 { #expect(streak.duplicate(channel: "a", now: start + .seconds(1)) == nil) }
        #expect(streak.duplicate(channel: "c", now: start + .seconds(31)) == .init(duplicates: 11, channels: 2))
    }

    @Test func anAppliedMessageEndsTheStreak() {
        var streak = DuplicateStreak(threshold: 3)
        let now = ContinuousClock.now
        _ = streak.duplicate(channel: "a", now: now)
        _ = streak.duplicate(channel: "a", now: now)
        streak.applied()
        #expect(streak.duplicate(channel: "a", now: now) == nil)
        #expect(streak.duplicate(channel: "a", now: now) == nil)
        #expect(streak.duplicate(channel: "a", now: now)?.duplicates == 3)
    }
}
