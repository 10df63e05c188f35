import Foundation
import StreamWorker
import Testing

@Suite struct ChannelPartitionTests {
    struct Vector: Decodable {
        var channel: String
        var crc32: UInt32
        var partitions: [String: Int]
    }

    static func vectors() throws -> [Vector] {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("docs/partition-vectors.json")
        struct File: Decodable { var vectors: [Vector] }
        return try JSONDecoder().decode(File.self, from: Data(contentsOf: url)).vectors
    }

    @Test func crc32IsZlibsCRC32() {
        #expect(ChannelPartition.crc32("123456789".utf8) == 0xCBF4_3926)
        #expect(ChannelPartition.crc32("".utf8) == 0)
    }

    @Test func everySharedVectorMapsToItsPartition() throws {
        let vectors = try Self.vectors()
        #expect(vectors.count >= 10)
        for vector in vectors {
            #expect(ChannelPartition.crc32(vector.channel.utf8) == vector.crc32, "\(vector.channel)")
            for (count, partition) in vector.partitions {
                #expect(ChannelPartition.of(vector.channel, count: Int(count)!) == partition, "\(vector.channel) mod \(count)")
            }
        }
    }

    @Test func oneCountPutsEveryChannelInPartitionZero() {
        #expect(ChannelPartition.of("anything", count: 1) == 0)
    }
}

@Suite struct PartitionAssignmentTests {
    static let members = (0..<5).map { "worker-\($0)" }

    @Test func everyPartitionHasExactlyOneOwnerAmongTheMembers() {
        let owners = PartitionAssignment.owners(partitions: 64, members: Self.members)
        #expect(owners.count == 64)
        #expect(owners.allSatisfy(Self.members.contains))
        #expect(Set(owners).count == Self.members.count, "with 64 partitions every one of 5 members gets some")
    }

    @Test func memberOrderDoesNotChangeTheAnswer() {
        #expect(PartitionAssignment.owners(partitions: 32, members: Self.members)
            == PartitionAssignment.owners(partitions: 32, members: Self.members.reversed()))
    }

    @Test func aJoinMovesAboutOneInNMostlyToTheNewMember() {
        let partitions = 1024
        let before = PartitionAssignment.owners(partitions: partitions, members: Self.members)
        let after = PartitionAssignment.owners(partitions: partitions, members: Self.members + ["worker-new"])
        let moved = (0..<partitions).filter { before[$0] != after[$0] }
        let shuffled = moved.filter { after[$0] != "worker-new" }
        // The new member takes its share, ceil(1024 / 6) = 171 at most; the caps shift a few others.
        #expect(after.filter { $0 == "worker-new" }.count >= 160, "the new member gets its share")
        #expect(shuffled.count <= partitions / 50, "\(shuffled.count) partitions moved between old members")
        #expect((160...200).contains(moved.count), "moved \(moved.count)")
    }

    @Test func aLeaveMovesTheLeaversPartitionsAndLittleElse() {
        let partitions = 1024
        let before = PartitionAssignment.owners(partitions: partitions, members: Self.members)
        let after = PartitionAssignment.owners(partitions: partitions, members: Self.members.filter { $0 != "worker-2" })
        let shuffled = (0..<partitions).filter { before[$0] != after[$0] && before[$0] != "worker-2" }
        #expect(shuffled.count <= partitions / 50, "\(shuffled.count) partitions moved between the staying members")
        #expect(!after.contains("worker-2"))
    }

    /// Plain rendezvous hashing gave one of four members 1 of 16 partitions; the cap keeps every
    /// member at ceil(P / N) or below, so no member is left idle while another is overloaded.
    @Test(arguments: [(16, 3), (16, 4), (16, 5), (64, 5), (1024, 7), (4, 3)])
    func noMemberOwnsMoreThanItsShare(partitions: Int, memberCount: Int) {
        let members = (0..<memberCount).map { "bench-\($0)" }
        let owners = PartitionAssignment.owners(partitions: partitions, members: members)
        let cap = (partitions + memberCount - 1) / memberCount
        for member in members {
            let owned = owners.filter { $0 == member }.count
            #expect(owned <= cap, "\(member) owns \(owned) of \(partitions), more than \(cap)")
            #expect(owned >= partitions - cap * (memberCount - 1), "\(member) owns only \(owned)")
        }
    }

    @Test func noMembersMeansNoOwners() {
        #expect(PartitionAssignment.owners(partitions: 8, members: [String]()).isEmpty)
        #expect(PartitionAssignment.partitions(of: "w", partitions: 8, members: [String]()).isEmpty)
    }
}

@Suite struct WorkerKeysTests {
    @Test func onePartitionKeepsTheClassicNames() {
        let keys = WorkerKeys(prefix: "sg", partitions: 1)
        #expect(keys.lock(channel: "42") == "sg:lock:channel:42")
        #expect(keys.state(channel: "42") == "sg:state:channel:42")
        #expect(keys.stream("sg:stream:inbound", channel: "42") == "sg:stream:inbound")
        #expect(keys.streams("s") == ["s"])
        #expect(keys.pattern("history") == "sg:history:channel:*")
    }

    @Test func partitionedKeysOfAChannelShareItsPartitionsHashTag() {
        let keys = WorkerKeys(prefix: "sg", partitions: 16)
        let p = ChannelPartition.of("ch0", count: 16)
        let tag = "{p\(p)}"
        for key in [keys.lock(channel: "ch0"), keys.fence(channel: "ch0"), keys.state(channel: "ch0"),
                    keys.history(channel: "ch0"), keys.seq(channel: "ch0"), keys.deadSeqs(channel: "ch0"),
                    keys.stream("sg:stream:inbound", channel: "ch0"),
                    WorkerKeys.deadLetters(of: keys.stream("sg:stream:inbound", channel: "ch0")),
                    keys.partitionLease(p, group: "workers")] {
            #expect(Self.hashTag(key) == "p\(p)", "\(key)")
        }
        #expect(keys.lock(channel: "ch0") == "sg:\(tag):lock:channel:ch0")
        #expect(keys.stream("in", partition: 3) == "in:{p3}")
        #expect(keys.streams("in").count == 16)
    }

    @Test func aChannelIdWithBracesCannotMoveTheHashTag() {
        let keys = WorkerKeys(prefix: "sg", partitions: 16)
        let p = ChannelPartition.of("{evil}", count: 16)
        #expect(Self.hashTag(keys.state(channel: "{evil}")) == "p\(p)")
    }

    @Test func channelIdsComeBackOutOfTheirKeys() {
        for partitions in [1, 16] {
            let keys = WorkerKeys(prefix: "sg", partitions: partitions)
            #expect(keys.channel(inKey: keys.history(channel: "a:b"), kind: "history") == "a:b")
            #expect(keys.channel(inKey: "other:history:channel:x", kind: "history") == nil)
        }
        // A key in another partition than its channel's is not this layout's.
        #expect(WorkerKeys(prefix: "sg", partitions: 16).channel(inKey: "sg:{p99}:history:channel:ch0", kind: "history") == nil)
    }

    /// Redis Cluster's rule: the first `{…}` with something inside.
    static func hashTag(_ key: String) -> String? {
        guard let open = key.firstIndex(of: "{"), let close = key[key.index(after: open)...].firstIndex(of: "}"),
              close > key.index(after: open) else { return nil }
        return String(key[key.index(after: open)..<close])
    }
}
