/// The desired owner of every partition, from the live members alone: rendezvous
/// (highest-random-weight) hashing. Every worker computes the same answer from the same members,
/// and a join or a leave moves only the partitions whose best member changed, about 1/N of them.
public enum PartitionAssignment {
    /// `owners[p]` is the member that should own partition `p`; empty when there are no members.
    public static func owners(partitions: Int, members: some Collection<String>) -> [String] {
        guard !members.isEmpty else { return [] }
        let sorted = members.sorted()
        return (0..<partitions).map { p in
            var best = sorted[0], bestWeight = weight(member: sorted[0], partition: p)
            for member in sorted.dropFirst() {
                let w = weight(member: member, partition: p)
                // Ties (vanishingly rare) go to the smaller name, so every worker agrees.
                if w > bestWeight { best = member; bestWeight = w }
            }
            return best
        }
    }

    /// The partitions `member` should own.
    public static func partitions(of member: String, partitions: Int, members: some Collection<String>) -> Set<Int> {
        var mine = Set<Int>()
        for (p, owner) in owners(partitions: partitions, members: members).enumerated() where owner == member { mine.insert(p) }
        return mine
    }

    /// FNV-1a 64 of `member`, a zero byte and the decimal partition, finished with splitmix64's mixer
    /// (FNV alone spreads short, similar inputs poorly).
    static func weight(member: String, partition: Int) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        func feed(_ byte: UInt8) { h = (h ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
        for byte in member.utf8 { feed(byte) }
        feed(0)
        for byte in String(partition).utf8 { feed(byte) }
        var z = h &+ 0x9e37_79b9_7f4a_7c15
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}
