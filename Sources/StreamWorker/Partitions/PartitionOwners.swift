import RedisClient

/// The operators' record of who acquired each partition last (``WorkerKeys/partitionOwners(group:)``):
/// partition number → `<consumer> <epoch>`. The coordinator writes it; tools read it. The lease,
/// not this record, decides who reads.
public enum PartitionOwners {
    /// The value the coordinator stores for a partition.
    static func value(consumer: String, epoch: Int64) -> String { "\(consumer) \(epoch)" }

    /// Partition → consumer, from an HGETALL reply of the hash; malformed fields are skipped.
    public static func consumers(_ reply: RESPValue) -> [Int: String] {
        let flat = reply.array?.compactMap(\.string) ?? []
        var owners: [Int: String] = [:]
        for i in stride(from: 0, to: flat.count - 1, by: 2) {
            guard let p = Int(flat[i]), let consumer = flat[i + 1].split(separator: " ").first else { continue }
            owners[p] = String(consumer)
        }
        return owners
    }
}
