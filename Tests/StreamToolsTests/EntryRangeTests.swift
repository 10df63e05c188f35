import StreamTools
import Testing

@Suite struct EntryRangeTests {
    @Test func idsParseInBothFormsAndCompareByTimeThenSequence() {
        #expect(StreamID("1700000000000-5") == StreamID(milliseconds: 1_700_000_000_000, sequence: 5))
        #expect(StreamID("12") == StreamID(milliseconds: 12, sequence: 0))
        #expect(StreamID("1-9")! < StreamID("2-0")!)
        #expect(StreamID("2-1")! > StreamID("2-0")!)
        for bad in ["", "-", "1-", "-1", "a-1", "1-2-3", "1.5", "+", "１-1", "99999999999999999999-0"] {
            #expect(StreamID(bad) == nil, "\(bad)")
        }
    }

    @Test func defaultsCoverTheWholeStream() throws {
        #expect(try EntryRange.parse(from: nil, to: nil, count: nil) == .all)
    }

    @Test func boundsAcceptIdsBareMillisecondsAndExclusiveStarts() throws {
        let range = try EntryRange.parse(from: "(1700000000000-1", to: "1700000001000", count: 10)
        #expect(range.start == "(1700000000000-1")
        #expect(range.end == "1700000001000-\(UInt64.max)")
        #expect(range.limit == 10)
    }

    @Test func badRangesAreRejectedWithTheOptionNamed() {
        #expect(throws: RangeError.self) { try EntryRange.parse(from: "yesterday", to: nil, count: nil) }
        #expect(throws: RangeError.self) { try EntryRange.parse(from: "5-0", to: "4-0", count: nil) }
        #expect(throws: RangeError.self) { try EntryRange.parse(from: "(5-0", to: "5-0", count: nil) }
        #expect(throws: RangeError.self) { try EntryRange.parse(from: nil, to: nil, count: 0) }
        do {
            _ = try EntryRange.parse(from: nil, to: "later", count: nil)
        } catch {
            #expect(error.message.contains("--to 'later'"))
        }
    }

    @Test func resetTargetsAreTheBeginningTheEndOrAnId() throws {
        #expect(try ResetTarget("0") == .beginning)
        #expect(try ResetTarget("$") == .end)
        #expect(try ResetTarget("5-1") == .id(StreamID(milliseconds: 5, sequence: 1)))
        #expect(throws: RangeError.self) { try ResetTarget("latest") }
    }
}
