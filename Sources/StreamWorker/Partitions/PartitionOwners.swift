import RedisClient

/// The operators' record of who acquired each partition last (``WorkerKeys/partitionOwners(group:)``):
/// partition number → `<consumer> <epoch>`, and `<consumer> <epoch> shed` once that owner gave the
/// lease back in a cooperative shed. The coordinator writes it; tools read it. The lease, not this
/// record, decides who reads.
public enum PartitionOwners {
    /// The value the coordinator stores for a partition.
    static func value(consumer: String, epoch: Int64) -> String { "\(consumer) \(epoch)" }

    /// The value an owner stores just before it gives the lease back cooperatively.
    static func shedValue(consumer: String, epoch: Int64) -> String { "\(consumer) \(epoch) shed" }

    /// Whether the lease drawn at `epoch` directly follows one its owner gave back cooperatively,
    /// by the record as it was before this owner wrote its own. Then the previous owner's pending
    /// entries were dropped unstarted or abandoned within the shed bound, not left by a crash.
    static func followsShed(_ record: String?, epoch: Int64) -> Bool {
        guard let parts = record?.split(separator: " "), parts.count == 3, parts[2] == "shed" else { return false }
        return Int64(parts[1]) == epoch - 1
    }

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
