import Foundation
import RedisClient
import StreamWorker
import TestSupport
import Testing

/// SIGTERM as Kubernetes sends it, to real stream-consumer processes: reading and starting stop at
/// once, running turns get shutdown-grace and are then cancelled, and their entries stay pending.
@Suite(.serialized) struct ShutdownTests {
    typealias Deployment = WorkerPoolTests.Deployment

    static func nowMicros() -> Int64 { Int64(Date().timeIntervalSince1970 * 1_000_000) }

    /// One message on each of `channels` channels.
    static func produceOnePerChannel(_ d: Deployment, channels: Int) async throws {
        _ = try? await d.client.send("XGROUP", "CREATE", d.stream, "g", "0", "MKSTREAM")
        for c in 0..<channels {
            _ = try await Producer(client: d.client, keys: d.keys).send(stream: d.stream, channel: "ch\(c)", fields: [StreamField("n", "0")])
        }
    }

    static func lockKeysLeft(_ d: Deployment, channels: Int) async throws -> Int {
        let replies = try await d.client.pipeline((0..<channels).map { RedisCommand("EXISTS", d.keys.lock(channel: "ch\($0)")) })
        return replies.reduce(0) { $0 + Int((try? $1.get().int) ?? 0) }
    }

    @Test func aLongTurnIsCancelledAtGraceAndNothingQueuedStartsAfterSIGTERM() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        let channels = 8
        try await Self.produceOnePerChannel(d, channels: channels)
        // Four 20 s turns run and four messages wait in the queue when SIGTERM arrives.
        let worker = try d.worker("w", ["--work-ms", "20000", "--shutdown-grace", "2", "--concurrency", "4"], jitterMs: 0)
        defer { worker.killNow() }
        try await waitUntil(timeout: .seconds(60)) {
            try await d.auditRecords().filter { $0["kind"] == "enter" }.count == 4
        }
        let signalled = ContinuousClock.now
        let signalledMicros = Self.nowMicros()
        worker.signal(SIGTERM)
        #expect(await worker.wait(timeout: .seconds(60)) == 0)
        let exitTime = ContinuousClock.now - signalled
        // Within grace plus a small bound, and well before the 20 s turns could have finished.
        #expect(exitTime < .seconds(12), "exited \(exitTime) after SIGTERM with a 2 s grace")
        #expect(exitTime >= .seconds(2), "the running turns were given their grace")

        let records = try await d.auditRecords()
        let enters = records.filter { $0["kind"] == "enter" }
        #expect(enters.count == 4, "nothing queued started after SIGTERM")
        #expect(enters.allSatisfy { Int64($0["at_us"] ?? "") ?? .max < signalledMicros })
        let handled = records.filter { $0["kind"] == "handle" }
        #expect(handled.count == 4 && handled.allSatisfy { $0["status"] == "cancelled" }, "\(handled)")
        #expect(records.filter { $0["kind"] == "commit" && $0["outcome"] == "applied" }.isEmpty)
        // Every entry stays pending for another worker, and no lock outlives the process.
        #expect(try await d.client.send("XPENDING", d.stream, "g").array?.first?.int == Int64(channels))
        #expect(try await Self.lockKeysLeft(d, channels: channels) == 0)
    }

    @Test func runningTurnsFinishWithinGraceWhileNoOtherWorkerReclaimsThem() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        let channels = 6
        try await Self.produceOnePerChannel(d, channels: channels)
        // claim-idle 2 s is far shorter than the 6 s turns: only the idle refresh keeps them here.
        let timing = ["--lock-ttl", "1", "--claim-idle", "2"]
        let owner = try d.worker("owner", timing + ["--work-ms", "6000", "--shutdown-grace", "60", "--concurrency", "2"], jitterMs: 0)
        defer { owner.killNow() }
        try await waitUntil(timeout: .seconds(60)) {
            try await d.auditRecords().filter { $0["kind"] == "enter" }.count == 2
        }
        let running = Set(try await d.auditRecords().filter { $0["kind"] == "enter" }.compactMap { $0["entry"] })
        let other = try d.worker("other", timing + ["--work-ms", "100"], jitterMs: 0)
        defer { other.killNow() }
        let signalled = ContinuousClock.now
        let signalledMicros = Self.nowMicros()
        owner.signal(SIGTERM)

        // While the owner still runs them, its two entries stay its own.
        var stolen: [String] = []
        var exitCode: Int32?
        while exitCode == nil, ContinuousClock.now - signalled < .seconds(60) {
            let pending = try await d.client.send("XPENDING", d.stream, "g", "-", "+", 100).array ?? []
            for row in pending {
                guard let fields = row.array, fields.count == 4, let id = fields[0].string, running.contains(id) else { continue }
                if fields[1].string != "owner" { stolen.append(id) }
            }
            exitCode = await owner.wait(timeout: .milliseconds(200))
        }
        #expect(exitCode == 0)
        #expect(stolen.isEmpty, "reclaimed while their owner ran them: \(stolen)")
        // It finished its turns and did not wait out the grace, nor run the queue.
        #expect(ContinuousClock.now - signalled < .seconds(40))

        try await d.waitForAll(channels, channels: channels, timeout: .seconds(120))
        try await d.verifyHistories(messages: channels, channels: channels)
        let records = try await d.auditRecords()
        let ownerEnters = records.filter { $0["kind"] == "enter" && $0["consumer"] == "owner" }
        #expect(Set(ownerEnters.compactMap { $0["entry"] }) == running, "the owner started nothing after SIGTERM")
        #expect(ownerEnters.allSatisfy { Int64($0["at_us"] ?? "") ?? .max < signalledMicros })
        let ownerApplied = records.filter { $0["kind"] == "commit" && $0["consumer"] == "owner" && $0["outcome"] == "applied" }
        #expect(Set(ownerApplied.compactMap { $0["entry"] }) == running, "the running turns were committed by their owner")
        try await d.verifyInvariants(channels: channels)
    }
}
