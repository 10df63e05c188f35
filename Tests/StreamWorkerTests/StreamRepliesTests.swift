import RedisClient
@testable import StreamWorker
import Testing

/// Decoding of the stream commands' replies: exact on every shape the command returns, an error
/// naming the command on any other.
@Suite struct StreamRepliesTests {
    static func bulk(_ s: String) -> RESPValue { .bulk(Array(s.utf8)) }
    static func entry(_ id: String, _ fields: [String]) -> RESPValue { .array([bulk(id), .array(fields.map(bulk))]) }

    @Test func aReadGroupReplyKeepsStreamsEntriesAndDeletedOnes() throws {
        let reply = RESPValue.array([
            .array([Self.bulk("s1"), .array([Self.entry("1-0", ["channel_id", "a", "seq", "1"]), .array([Self.bulk("2-0"), .null])])]),
            .array([Self.bulk("s2"), .array([Self.entry("3-0", [])])]),
        ])
        let entries = try StreamReplies.readGroup(reply)
        #expect(entries.map(\.stream) == ["s1", "s1", "s2"])
        #expect(entries[0].entry == StreamReplyEntry(id: "1-0", fields: [StreamField("channel_id", "a"), StreamField("seq", "1")]))
        #expect(entries[1].entry == StreamReplyEntry(id: "2-0", fields: nil), "deleted while pending")
        #expect(entries[2].entry.fields == [])
        #expect(try StreamReplies.readGroup(.null).isEmpty, "the block timed out")
    }

    @Test func aMalformedReadGroupReplyIsAnErrorNamingTheCommand() {
        for bad: RESPValue in [
            .integer(1),
            .array([.array([Self.bulk("s1")])]),
            .array([.array([Self.bulk("s1"), .array([Self.entry("1-0", ["odd"])])])]),
            .array([.array([Self.bulk("s1"), .array([.array([Self.bulk("1-0")])])])]),
        ] {
            #expect { try StreamReplies.readGroup(bad) } throws: { "\($0)".contains("XREADGROUP") }
        }
    }

    @Test func anAutoClaimReplyKeepsItsCursorEntriesAndDeletedIds() throws {
        let reply = RESPValue.array([Self.bulk("5-0"), .array([Self.entry("1-0", ["k", "v"])]), .array([Self.bulk("2-0")])])
        let claimed = try StreamReplies.autoClaim(reply)
        #expect(claimed.cursor == "5-0")
        #expect(claimed.entries == [StreamReplyEntry(id: "1-0", fields: [StreamField("k", "v")])])
        #expect(claimed.deleted == ["2-0"])
    }

    /// It used to come back as cursor `0-0` and no entries: the reclaim pass silently started over.
    @Test func aMalformedAutoClaimReplyIsAnErrorNotAFreshCursor() {
        for bad: RESPValue in [.null, .array([]), .array([Self.bulk("5-0")]), .array([Self.bulk("5-0"), .integer(3)]),
                               .array([Self.bulk("5-0"), .array([.integer(1)])])] {
            #expect { try StreamReplies.autoClaim(bad) } throws: { "\($0)".contains("XAUTOCLAIM") }
        }
    }

    @Test func oneHashDecoderServesEveryFlatReply() throws {
        let reply = RESPValue.array([Self.bulk("a"), Self.bulk("1"), Self.bulk("b"), .integer(2), Self.bulk("a"), Self.bulk("3")])
        #expect(try reply.hash(from: "HGETALL") == ["a": Self.bulk("3"), "b": .integer(2)], "a repeated name keeps its last value")
        #expect(try reply.stringHash(from: "HGETALL") == ["a": "3", "b": "2"])
        #expect(try reply.pairs(from: "HGETALL").map(\.name) == [Array("a".utf8), Array("b".utf8), Array("a".utf8)])
        #expect { try RESPValue.array([Self.bulk("a")]).hash(from: "XINFO GROUPS") } throws: { "\($0)".contains("XINFO GROUPS") }
        #expect { try RESPValue.integer(1).hash(from: "HGETALL") } throws: { "\($0)".contains("HGETALL") }
        #expect { try RESPValue.array([.array([]), Self.bulk("x")]).hash(from: "HGETALL") } throws: { "\($0)".contains("field name") }
        #expect { try RESPValue.array([Self.bulk("a"), .array([])]).stringHash(from: "HGETALL") } throws: { _ in true }
    }

    @Test func pendingRangeAndJustIDClaimRepliesAreDecodedAndMalformedOnesNamed() throws {
        let rows = try StreamReplies.pending(.array([.array([Self.bulk("1-0"), Self.bulk("c"), .integer(12), .integer(3)])]))
        #expect(rows.map(\.id) == ["1-0"] && rows[0].idle == 12 && rows[0].deliveries == 3)
        #expect(try StreamReplies.range(.array([Self.entry("1-0", ["k", "v"])])) == [StreamReplyEntry(id: "1-0", fields: [StreamField("k", "v")])])
        #expect(try StreamReplies.range(.array([])).isEmpty, "trimmed away")
        let ids = try StreamReplies.autoClaimIDs(.array([Self.bulk("0-0"), .array([Self.bulk("1-0"), Self.bulk("2-0")]), .array([])]))
        #expect(ids.cursor == "0-0" && ids.ids == ["1-0", "2-0"])
        #expect { try StreamReplies.pending(.array([.array([Self.bulk("1-0"), Self.bulk("c"), .integer(12)])])) } throws: { "\($0)".contains("XPENDING") }
        #expect { try StreamReplies.range(.integer(1)) } throws: { "\($0)".contains("XRANGE") }
        #expect { try StreamReplies.autoClaimIDs(.array([Self.bulk("0-0"), .array([.array([])])])) } throws: { "\($0)".contains("JUSTID") }
    }

    /// Only a lease drawn right after a cooperative shed skips counting the hand-over as a delivery.
    @Test func aHandOverFollowsAShedOnlyWhenTheRecordSaysSoForThePreviousEpoch() {
        #expect(PartitionOwners.followsShed(PartitionOwners.shedValue(consumer: "w1", epoch: 6), epoch: 7))
        #expect(!PartitionOwners.followsShed(PartitionOwners.shedValue(consumer: "w1", epoch: 5), epoch: 7), "someone held it in between")
        #expect(!PartitionOwners.followsShed(PartitionOwners.value(consumer: "w1", epoch: 6), epoch: 7), "its lease ran out")
        #expect(!PartitionOwners.followsShed(nil, epoch: 1))
        #expect(!PartitionOwners.followsShed("garbage", epoch: 1))
    }
}
