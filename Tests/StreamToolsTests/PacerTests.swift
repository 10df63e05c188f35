import StreamTools
import Testing

@Suite struct PacerTests {
    static func id(_ ms: UInt64) -> StreamID { StreamID(milliseconds: ms, sequence: 0) }

    @Test func withoutRateOrSpeedEverythingIsDueAtOnce() throws {
        var pacer = try Pacer()
        #expect(pacer.isUnpaced)
        #expect((0..<5).map { pacer.offset(index: $0, id: Self.id(UInt64($0) * 1000)) }.allSatisfy { $0 == .zero })
    }

    @Test func aRateSpacesEntriesEvenly() throws {
        var pacer = try Pacer(rate: 4)
        #expect((0..<5).map { pacer.offset(index: $0, id: nil) } == [.zero, .milliseconds(250), .milliseconds(500), .milliseconds(750), .seconds(1)])
    }

    @Test func speedKeepsTheOriginalGapsScaled() throws {
        var pacer = try Pacer(speed: 2)
        let offsets = [10_000, 10_000, 11_000, 15_000].enumerated().map { pacer.offset(index: $0.offset, id: Self.id(UInt64($0.element))) }
        #expect(offsets == [.zero, .zero, .milliseconds(500), .milliseconds(2500)])
    }

    @Test func hugeGapsAtLowSpeedOrRateAreCappedNotACrash() throws {
        var slow = try Pacer(speed: 0.1)
        _ = slow.offset(index: 0, id: Self.id(1))
        #expect(slow.offset(index: 1, id: Self.id(1_700_000_000_000)) == .seconds(365 * 86_400))
        var trickle = try Pacer(rate: 1e-9)
        #expect(trickle.offset(index: 10, id: nil) == .seconds(365 * 86_400))
    }

    @Test func withRateAndSpeedTheLaterTimeWins() throws {
        var pacer = try Pacer(rate: 1, speed: 1)
        let offsets = [0, 100, 5000].enumerated().map { pacer.offset(index: $0.offset, id: Self.id(UInt64($0.element))) }
        #expect(offsets == [.zero, .seconds(1), .seconds(5)])
    }

    @Test func anEntryOlderThanItsPredecessorIsNotSentEarlier() throws {
        var pacer = try Pacer(speed: 1)
        let offsets = [1000, 3000, 2000, 0].enumerated().map { pacer.offset(index: $0.offset, id: Self.id(UInt64($0.element))) }
        #expect(offsets == [.zero, .seconds(2), .seconds(2), .seconds(2)])
    }

    @Test(arguments: [0.0, -1.0, Double.nan, Double.infinity])
    func nonPositiveOrNonFiniteSettingsAreRejected(value: Double) {
        #expect(throws: PacingError.self) { try Pacer(rate: value) }
        #expect(throws: PacingError.self) { try Pacer(speed: value) }
    }
}
