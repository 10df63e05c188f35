import RedisClient

/// The operators' record of who acquired each partition last (``WorkerKeys/partitionOwners(group:)``):
/// partition number → `<consumer> <epoch>`. The coordinator writes it; tools read it. The lease,
/// not this record, decides who reads.
public enum PartitionOwners {
    /// The value the coordinator stores for a partition.
    static func value(consumer: String, epoch: Int64) -> String { "\(consumer) \(epoch)" }

    /// Partition → consumer, from an HGETALL reply of the hash; malformed fields are skipped.
    public static func consumers(_ reply: RESPValue) -> [Int: String] {
        var owners: [Int: String] = [:]
        for (field, value) in (try? reply.stringHash(from: "HGETALL partition owners")) ?? [:] {
            guard let p = Int(field), let consumer = value.split(separator: " ").first else { continue }
            owners[p] = String(consumer)
        }
        return owners
    }
}
