import Chaos
import Foundation
import RedisClient
import StreamWorker

/// Samples who holds each partition's lease, every 100 ms while a chaos run works, for the
/// timeline's ownership strips and the report.
///
/// A lease's holder is read from the operators' owners hash, which the new holder writes right
/// after acquiring: for at most one sample a fresh lease may be shown under its previous holder.
actor OwnershipRecorder {
    private let client: RedisClient
    private let keys: WorkerKeys
    private let group: String
    private var samples: [PartitionOwnershipTrail.Sample] = []

    init(client: RedisClient, keys: WorkerKeys, group: String) {
        self.client = client
        self.keys = keys
        self.group = group
    }

    /// Until cancelled; a failed sample (Redis restarting) is skipped.
    func run() async {
        while !Task.isCancelled {
            if let sample = try? await sample() { samples.append(sample) }
            try? await Task.sleep(for: .milliseconds(100))
        }
    }

    var trail: PartitionOwnershipTrail { PartitionOwnershipTrail(partitions: keys.partitions, samples: samples) }

    private func sample() async throws -> PartitionOwnershipTrail.Sample {
        var commands = [RedisCommand("HGETALL", keys.partitionOwners(group: group))]
        commands += (0..<keys.partitions).map { RedisCommand("EXISTS", keys.partitionLease($0, group: group)) }
        let replies = try await client.pipeline(commands)
        let named = PartitionOwners.consumers(try replies[0].get())
        let owners: [String?] = try (0..<keys.partitions).map { p in try replies[p + 1].get().int == 1 ? named[p] : nil }
        return .init(atMicros: Int64(Date().timeIntervalSince1970 * 1_000_000), owners: owners)
    }
}
