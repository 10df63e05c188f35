/// The desired owner of every partition, from the live members alone: rendezvous
/// (highest-random-weight) hashing with bounded loads. Every worker computes the same answer from
/// the same members.
///
/// Plain rendezvous hashing leaves a small pool lopsided (16 partitions over 4 members gave one of
/// them a single partition), so each member takes at most `ceil(P / N)`: the (member, partition)
/// pairs are taken in decreasing weight, each partition going to the first member with room. A join
/// or a leave still moves about 1/N of the partitions; the cap makes a few percent more shift
/// between the other members.
public enum PartitionAssignment {
    /// `owners[p]` is the member that should own partition `p`; empty when there are no members.
    public static func owners(partitions: Int, members: some Collection<String>) -> [String] {
        let names = Array(Set(members)).sorted()
        guard !names.isEmpty, partitions > 0 else { return [] }
        let cap = (partitions + names.count - 1) / names.count
        var pairs: [(weight: UInt64, member: Int, partition: Int)] = []
        pairs.reserveCapacity(partitions * names.count)
        for (m, name) in names.enumerated() {
            for p in 0..<partitions { pairs.append((weight(member: name, partition: p), m, p)) }
        }
        // Ties (vanishingly rare) go to the smaller name, then the smaller partition, so every worker agrees.
        pairs.sort { a, b in
            a.weight != b.weight ? a.weight > b.weight : a.member != b.member ? a.member < b.member : a.partition < b.partition
        }
        var owner = [Int](repeating: -1, count: partitions)
        var load = [Int](repeating: 0, count: names.count)
        var left = partitions
        for pair in pairs where owner[pair.partition] < 0 && load[pair.member] < cap {
            owner[pair.partition] = pair.member
            load[pair.member] += 1
            left -= 1
            if left == 0 { break }
        }
        return owner.map { names[$0] }
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
