import Chaos
import Foundation
import RedisClient
import StreamWorker
import TestSupport
import Testing

/// Real stream-consumer processes over partition streams: the pool rebalances under load, and the
/// channel locks and fences keep every message exactly once and in order through each change.
@Suite(.serialized) struct PartitionedPoolTests {
    typealias Deployment = WorkerPoolTests.Deployment
    static let ttl = ["--lock-ttl", "1", "--claim-idle", "2"]

    /// Partition leases held right now (a lease key holds exactly one token).
    static func heldLeases(_ d: Deployment) async throws -> Int {
        var held = 0
        for p in 0..<d.keys.partitions where try await d.client.send("EXISTS", d.keys.partitionLease(p, group: "g")).int == 1 {
            held += 1
        }
        return held
    }

    static func log(_ d: Deployment, _ name: String) -> String {
        (try? String(contentsOfFile: d.log(name), encoding: .utf8)) ?? ""
    }

    @Test func aPartitionedPoolOfThreeAppliesEveryMessageOnceInOrder() async throws {
        let d = try Deployment(partitions: 8)
        defer { d.cleanup() }
        let messages = 6000, channels = 60
        try await d.produce(messages: messages / 2, channels: channels)
        let workers = try (0..<3).map { try d.worker("w\($0)") }
        defer { workers.forEach { $0.killNow() } }
        // The second half once every worker reads: a worker started late under load could find nothing left.
        for name in ["w0", "w1", "w2"] {
            try await waitUntil(timeout: .seconds(120)) { Self.log(d, name).contains("Reading partition") }
        }
        try await d.produce(messages: messages / 2, channels: channels)
        try await d.waitForAll(messages, channels: channels)
        #expect(try await Self.heldLeases(d) == 8, "every partition has an owner")
        for worker in workers { worker.signal(SIGTERM) }
        for worker in workers { #expect(await worker.wait(timeout: .seconds(60)) == 0) }
        #expect(try await Self.heldLeases(d) == 0, "a drained worker gives its leases back")
        try await d.verifyHistories(messages: messages, channels: channels)
        let results = try await d.verifyInvariants(channels: channels)
        #expect(results.overlaps == 0)
        for name in ["w0", "w1", "w2"] { #expect(Self.log(d, name).contains("Reading partition"), "\(name) read no partition") }
    }

    @Test func aWorkerJoiningMidRunTakesOverPartitionsWithNothingLostOrReordered() async throws {
        let d = try Deployment(partitions: 8)
        defer { d.cleanup() }
        let messages = 4000, channels = 40
        // Half now, half once the joiner reads: under load the first half can be done before a hand-over completes.
        try await d.produce(messages: messages / 2, channels: channels)
        let first = try (0..<2).map { try d.worker("w\($0)", Self.ttl + ["--work-ms", "2"]) }
        defer { first.forEach { $0.killNow() } }
        try await waitUntil(timeout: .seconds(120)) { try await d.appliedCount(channels: channels) >= 800 }
        let joiner = try d.worker("joiner", Self.ttl + ["--work-ms", "2"])
        defer { joiner.killNow() }
        try await waitUntil(timeout: .seconds(120)) { Self.log(d, "joiner").contains("Reading partition") }
        try await d.produce(messages: messages / 2, channels: channels)
        try await d.waitForAll(messages, channels: channels)
        #expect(Self.log(d, "w0").contains("Released partition") || Self.log(d, "w1").contains("Released partition"),
                "an owner shed a partition to the joiner")
        try await d.verifyHistories(messages: messages, channels: channels)
        try await d.verifyInvariants(channels: channels)
    }

    @Test func aWorkerLeavingBySIGTERMMidRunHandsItsPartitionsOver() async throws {
        let d = try Deployment(partitions: 8)
        defer { d.cleanup() }
        let messages = 4000, channels = 40
        try await d.produce(messages: messages, channels: channels)
        let workers = try (0..<3).map { try d.worker("w\($0)", Self.ttl + ["--work-ms", "2"]) }
        defer { workers.forEach { $0.killNow() } }
        try await waitUntil(timeout: .seconds(120)) { try await d.appliedCount(channels: channels) >= 800 }
        workers[0].signal(SIGTERM)
        #expect(await workers[0].wait(timeout: .seconds(60)) == 0)
        try await d.waitForAll(messages, channels: channels)
        try await d.verifyHistories(messages: messages, channels: channels)
        try await d.verifyInvariants(channels: channels)
    }

    @Test func aKilledWorkersPartitionsMoveOnceTheirLeasesExpire() async throws {
        let d = try Deployment(partitions: 8)
        defer { d.cleanup() }
        let messages = 3000, channels = 30
        try await d.produce(messages: messages, channels: channels)
        let victim = try d.worker("victim", Self.ttl, jitterMs: 10)
        let survivors = try (0..<2).map { try d.worker("s\($0)", Self.ttl, jitterMs: 10) }
        defer { survivors.forEach { $0.killNow() }; victim.killNow() }
        try await waitUntil(timeout: .seconds(120)) {
            guard Self.log(d, "victim").contains("Reading partition") else { return false }
            return try await d.appliedCount(channels: channels) > 300
        }
        victim.killNow()
        try await d.waitForAll(messages, channels: channels)
        try await d.verifyHistories(messages: messages, channels: channels)
        // A killed holder's channel leases run out rather than end in a release: overlaps are allowed
        // only where the older holder's write was refused.
        try await d.verifyInvariants(channels: channels, policy: .olderHolderRefused)
    }

    /// A rebalance is not a delivery: entries a worker keeps queued while its partitions change
    /// (here three visits of a second worker), and entries handed over in a cooperative shed, are
    /// neither counted again nor dead-lettered for it.
    @Test func rebalancesDoNotCountAsDeliveriesOfTheEntriesAWorkerKeeps() async throws {
        let d = try Deployment(partitions: 4)
        defer { d.cleanup() }
        let messages = 32, channels = 16
        let keeper = "keeper"
        // Visitors that take some partitions but not all, so that the keeper keeps some entries and sheds others.
        let visitors = (0..<200).map { "visitor\($0)" }.filter {
            (1...3).contains(PartitionAssignment.partitions(of: $0, partitions: 4, members: [keeper, $0]).count)
        }.prefix(3)
        try #require(visitors.count == 3)
        try await d.produce(messages: messages, channels: channels)
        let limit = ["--max-deliveries", "3"]
        // Both slow, so that what changes hands is still pending when it moves back.
        let slowly = Self.ttl + limit + ["--work-ms", "400", "--concurrency", "1"]
        let slow = try d.worker(keeper, slowly)
        defer { slow.killNow() }
        try await waitUntil(timeout: .seconds(120)) { try await d.appliedCount(channels: channels) >= 1 }
        for (visit, name) in visitors.enumerated() {
            let visitor = try d.worker(name, slowly)
            defer { visitor.killNow() }
            try await waitUntil(timeout: .seconds(120)) { Self.log(d, name).contains("Reading partition") }
            visitor.signal(SIGTERM)
            #expect(await visitor.wait(timeout: .seconds(60)) == 0)
            // The keeper reads every partition again before the next visit.
            try await waitUntil(timeout: .seconds(120)) {
                Self.log(d, keeper).components(separatedBy: "Reading partition").count - 1 >= 4 + visit + 1
            }
        }
        let deadLetters = d.streams.map { WorkerKeys.deadLetters(of: $0) }
        func dead() async throws -> Int64 {
            var n: Int64 = 0
            for key in deadLetters { n += try await d.client.send("XLEN", key).int ?? 0 }
            return n
        }
        // Dead-lettered entries are never applied: stop waiting as soon as one shows up.
        try await waitUntil(timeout: .seconds(240)) {
            if try await dead() > 0 { return true }
            return try await d.appliedCount(channels: channels) >= Int64(messages)
        }
        try #require(try await dead() == 0, "entries dead-lettered for max deliveries by rebalances alone")
        try await d.waitForAll(messages, channels: channels)
        try await d.verifyHistories(messages: messages, channels: channels)
        try await d.verifyInvariants(channels: channels)
    }
}
