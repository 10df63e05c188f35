import Chaos
import DistributedLocking
import Foundation
import RedisClient
import StreamWorker
import TestSupport
import Testing

/// Real stream-consumer processes against a real Redis.
@Suite(.serialized) struct WorkerPoolTests {
    /// One isolated deployment: its own key prefix, stream, group and audit stream.
    final class Deployment: Sendable {
        let client: RedisClient
        let keys: WorkerKeys
        let stream: String
        let audit: String
        let directory: URL
        let url: String
        /// What the workers need to reach `url`: nothing for plaintext, the test CA (and a client certificate) over TLS.
        let connectionFlags: [String]

        convenience init(tls: Bool = false, partitions: Int = 1) throws {
            if tls {
                try self.init(url: try TestTLS.url(), client: try TestTLS.client(), partitions: partitions, connectionFlags: [
                    "--tls-ca-file", try TestTLS.file("ca.crt"),
                    "--tls-cert-file", try TestTLS.file("client.crt"), "--tls-key-file", try TestTLS.file("client.key"),
                ])
            } else {
                try self.init(url: try TestRedis.url(), client: try TestRedis.client(), partitions: partitions)
            }
        }

        /// A deployment on a private Redis Cluster.
        convenience init(cluster: PrivateRedisCluster, partitions: Int) throws {
            try self.init(url: cluster.url, client: try cluster.client(), partitions: partitions)
        }

        private init(url: String, client: RedisClient, partitions: Int, connectionFlags: [String] = []) throws {
            self.url = url
            self.client = client
            self.connectionFlags = connectionFlags
            keys = WorkerKeys(prefix: "t" + UUID().uuidString.prefix(8).lowercased(), partitions: partitions)
            stream = keys.prefix + ":in"
            audit = keys.prefix + ":audit"
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("sg-pool-\(keys.prefix)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        }

        func worker(_ name: String, _ extra: [String] = [], jitterMs: Int = 2) throws -> ChildProcess {
            try ChildProcess(builtProductPath("stream-consumer"), [
                "--redis-url", url, "--stream", stream, "--group", "g", "--consumer", name, "--key-prefix", keys.prefix,
                "--history-max", "100000", "--batch", "64", "--block-ms", "200", "--log-level", "info",
                "--partitions", String(keys.partitions),
            ] + connectionFlags + (extra.contains("--concurrency") ? extra : extra + ["--concurrency", "16"]), stdout: log(name), environment: ["SG_AUDIT_STREAM": audit, "SG_AUDIT_JITTER_MS": String(jitterMs)])
        }

        func log(_ name: String) -> String { directory.appendingPathComponent("\(name).log").path }

        /// The audit's records (`kind`, `consumer`, `entry`, `fence`, `status`, `outcome`, …), as
        /// AuditingHandler writes them, oldest first.
        func auditRecords() async throws -> [[String: String]] {
            let records = try await client.send("XRANGE", audit, "-", "+").array ?? []
            return records.map { entry in
                let flat = entry.array?.last?.array?.compactMap(\.string) ?? []
                var fields: [String: String] = [:]
                for i in stride(from: 0, to: flat.count - 1, by: 2) { fields[flat[i]] = flat[i + 1] }
                return fields
            }
        }

        /// Whether `consumer` started a handler that has not returned yet, by the audit: then it
        /// holds that channel's lease.
        func isHandling(_ consumer: String) async throws -> Bool {
            var open = Set<String>()
            for record in try await auditRecords() where record["consumer"] == consumer {
                let attempt = "\(record["entry"] ?? "")@\(record["fence"] ?? "")"
                if record["kind"] == "enter" { open.insert(attempt) } else if record["kind"] == "handle" { open.remove(attempt) }
            }
            return !open.isEmpty
        }

        /// The streams the workers read: the partition streams, or the one stream.
        var streams: [String] { keys.streams(stream) }

        /// Entries read and not yet acknowledged, over every stream.
        func pending() async throws -> Int64 {
            var total: Int64 = 0
            for stream in streams { total += try await client.send("XPENDING", stream, "g").array?.first?.int ?? 1 }
            return total
        }

        func produce(messages: Int, channels: Int) async throws {
            for stream in streams { _ = try? await client.send("XGROUP", "CREATE", stream, "g", "0", "MKSTREAM") }
            // Batched: one message per channel in turn, a script call per partition.
            let producer = Producer(client: client, keys: keys)
            for i in 0..<(messages / channels) {
                let round = (0..<channels).map { OutgoingMessage(channel: "ch\($0)", fields: [StreamField("n", "\(i)")]) }
                for result in await producer.send(round, stream: stream) { _ = try result.get() }
            }
        }

        func appliedCount(channels: Int) async throws -> Int64 {
            let commands = (0..<channels).map { RedisCommand("HGET", keys.state(channel: "ch\($0)"), "count") }
            return try await client.pipeline(commands).reduce(0) { $0 + ((try? $1.get().int) ?? 0) }
        }

        func waitForAll(_ total: Int, channels: Int, timeout: Duration = .seconds(240)) async throws {
            do {
                try await waitUntil(timeout: timeout) {
                    let applied = try await self.appliedCount(channels: channels)
                    guard applied >= Int64(total) else { return false }
                    return try await self.pending() == 0
                }
            } catch {
                // What CI's output needs to tell a stall from a loss: the logs stay on its machine.
                let applied = (try? await appliedCount(channels: channels)) ?? -1
                let pending = (try? await pending()) ?? -1
                var dead: [String] = []
                for stream in streams {
                    for entry in (try? await client.send("XRANGE", WorkerKeys.deadLetters(of: stream), "-", "+").array) ?? [] {
                        let flat = entry.array?.last?.array?.compactMap(\.string) ?? []
                        dead.append(flat.firstIndex(of: "reason").map { flat[$0 + 1] } ?? "?")
                    }
                }
                Issue.record("\(applied) of \(total) applied, \(pending) pending, dead-lettered: \(dead)")
                throw error
            }
        }

        /// Every message applied exactly once and in seq order, per channel.
        func verifyHistories(messages: Int, channels: Int) async throws {
            for c in 0..<channels {
                let history = try await client.send("LRANGE", keys.history(channel: "ch\(c)"), 0, -1).array ?? []
                let seqs = history.compactMap { entry -> Int? in
                    guard let data = entry.bytes, let object = try? JSONSerialization.jsonObject(with: Data(data)) as? [String: Any] else { return nil }
                    return object["seq"] as? Int
                }
                #expect(seqs == Array(1...(messages / channels)), "channel ch\(c) history out of order or not exactly once")
            }
        }

        /// Everything the chaos checker judges: produced seqs, histories (with fences) and the audit trail.
        func observation(channels: Int) async throws -> ChaosObservation {
            var produced: [String: Int64] = [:], histories: [String: [HistoryEntry]] = [:]
            for c in 0..<channels {
                let channel = "ch\(c)"
                produced[channel] = try await client.send("GET", keys.seq(channel: channel)).string.flatMap { Int64($0) } ?? 0
                let entries = try await client.send("LRANGE", keys.history(channel: channel), 0, -1).array ?? []
                histories[channel] = HistoryEntry.decode(entries.compactMap(\.bytes))
            }
            let records = try await client.send("XRANGE", audit, "-", "+").array ?? []
            let events = records.compactMap { entry -> AuditEvent? in
                let flat = entry.array?.last?.array?.compactMap(\.string) ?? []
                var f: [String: String] = [:]
                for i in stride(from: 0, to: flat.count - 1, by: 2) { f[flat[i]] = flat[i + 1] }
                return AuditEvent(fields: f)
            }
            return ChaosObservation(produced: produced, histories: histories, audit: events, faults: [])
        }

        /// Exactly once, in order, increasing fences, and exclusion as `policy` defines it (`sgctl chaos`'s checker).
        @discardableResult
        func verifyInvariants(channels: Int, policy: ExclusionPolicy = .strict) async throws -> InvariantResults {
            let results = InvariantChecker.check(try await observation(channels: channels), policy: policy)
            #expect(results.ok, "invariants violated: \(results.violations)")
            return results
        }

        /// Logs stay in the temporary directory for post-mortems.
        func cleanup() {
            client.close()
        }
    }

    @Test func aPoolOfThreeAppliesEveryMessageOnceInOrderWithExclusion() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        let messages = 10_000, channels = 100
        try await d.produce(messages: messages, channels: channels)
        let workers = try (0..<3).map { try d.worker("w\($0)") }
        defer { workers.forEach { $0.killNow() } }
        try await d.waitForAll(messages, channels: channels)
        for worker in workers { worker.signal(SIGTERM) }
        for worker in workers { #expect(await worker.wait(timeout: .seconds(60)) == 0) }
        try await d.verifyHistories(messages: messages, channels: channels)
        let results = try await d.verifyInvariants(channels: channels)
        #expect(results.overlaps == 0)
    }

    @Test func aPoolOverTLSWithClientCertificatesAppliesEveryMessageOnceInOrder() async throws {
        let d = try Deployment(tls: true)
        defer { d.cleanup() }
        let messages = 3000, channels = 30
        try await d.produce(messages: messages, channels: channels)
        let workers = try (0..<3).map { try d.worker("tls\($0)") }
        defer { workers.forEach { $0.killNow() } }
        try await d.waitForAll(messages, channels: channels)
        for worker in workers { worker.signal(SIGTERM) }
        for worker in workers { #expect(await worker.wait(timeout: .seconds(60)) == 0) }
        try await d.verifyHistories(messages: messages, channels: channels)
        let results = try await d.verifyInvariants(channels: channels)
        #expect(results.overlaps == 0)
        // The workers really were TLS clients of this server, not of some plaintext one.
        let log = try String(contentsOfFile: d.log("tls0"), encoding: .utf8)
        #expect(log.contains("redis-url=\(d.url)"), "\(log)")
    }

    @Test func aKilledWorkersPendingMessagesAreReclaimedAndAppliedOnce() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        let messages = 3000, channels = 30
        try await d.produce(messages: messages, channels: channels)
        let ttl = ["--lock-ttl", "1", "--claim-idle", "2"]
        let victim = try d.worker("victim", ttl, jitterMs: 10)
        let survivors = try (0..<2).map { try d.worker("s\($0)", ttl, jitterMs: 10) }
        defer { survivors.forEach { $0.killNow() }; victim.killNow() }
        try await waitUntil(timeout: .seconds(120)) {
            let mine = try await d.client.send("XPENDING", d.stream, "g", "-", "+", 10, "victim").array?.count ?? 0
            let applied = try await d.appliedCount(channels: channels)
            return mine > 0 && applied > 300
        }
        victim.killNow()
        try await d.waitForAll(messages, channels: channels)
        try await d.verifyHistories(messages: messages, channels: channels)
        let reclaimed = try String(contentsOfFile: d.log("s0"), encoding: .utf8) + String(contentsOfFile: d.log("s1"), encoding: .utf8)
        #expect(reclaimed.contains("Reclaimed idle entries"))
    }

    /// On one stream the other worker reclaims the paused one's entries; partitioned, it also takes
    /// over the paused owner's partitions once their leases expire.
    @Test(arguments: [1, 4]) func aPausedWorkersLateCommitIsRejectedAndNothingIsAppliedTwice(partitions: Int) async throws {
        let d = try Deployment(partitions: partitions)
        defer { d.cleanup() }
        let messages = 400, channels = 8
        try await d.produce(messages: messages, channels: channels)
        let ttl = ["--lock-ttl", "1", "--claim-idle", "2", "--work-ms", "100", "--concurrency", "8"]
        let paused = try d.worker("paused", ttl, jitterMs: 0)
        defer { paused.killNow() }
        try await waitUntil(timeout: .seconds(60)) { try await d.appliedCount(channels: channels) >= 16 }
        // Stopped inside a handler, so that it holds a lease to lose: a worker the machine starved
        // may be between runs when it is stopped, and then nothing of it is late.
        try await waitUntil(timeout: .seconds(60)) {
            paused.signal(SIGSTOP)
            // Stopped for certain before the audit is read: a record still being written would
            // otherwise make a finished attempt look open.
            try await waitUntil(timeout: .seconds(10)) { paused.isStopped }
            if try await d.isHandling("paused") { return true }
            paused.signal(SIGCONT)
            return false
        }
        let other = try d.worker("other", ttl, jitterMs: 0)
        defer { other.killNow() }
        // Long past the TTL: the other worker takes over the channels (and partitions) and commits.
        let before = try await d.appliedCount(channels: channels)
        try await waitUntil(timeout: .seconds(60)) { try await d.appliedCount(channels: channels) >= before + 20 }
        paused.signal(SIGCONT)
        try await d.waitForAll(messages, channels: channels, timeout: .seconds(240))
        try await d.verifyHistories(messages: messages, channels: channels)
        // The resumed holder either finds its lease gone before committing or has its commit refused;
        // any overlap it caused ended without its write. The audit says so, and so does the holder's
        // own log (the audit is best effort: a record the resumed process could not write is missing).
        let results = try await d.verifyInvariants(channels: channels, policy: .olderHolderRefused)
        let log = (try? String(contentsOfFile: d.log("paused"), encoding: .utf8)) ?? ""
        let logged = log.contains("Lease lost") || log.contains("Commit rejected")
        #expect(results.rejectedStaleCommits + results.abandonedAttempts >= 1 || logged,
                "no sign that the resumed holder lost its lease or had a commit refused")
    }

    @Test func badInputIsDeadLetteredWithItsReasonAndConsumingContinues() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        _ = try? await d.client.send("XGROUP", "CREATE", d.stream, "g", "0", "MKSTREAM")
        let bad: [[String]] = [
            ["text", "no channel"],
            ["channel_id", ""],
            ["channel_id", String(repeating: "x", count: 300)],
            ["channel_id", "a\u{7}b"],
            ["channel_id", "ok", "seq", "twelve"],
            ["channel_id", "ok", "blob", String(repeating: "z", count: 70_000)],
        ]
        for fields in bad { try await d.client.send(RedisCommand("XADD", [d.stream, "*"] + fields)) }
        try await Producer(client: d.client, keys: d.keys).send(stream: d.stream, channel: "ch0", fields: [StreamField("n", "0")])
        let worker = try d.worker("w")
        defer { worker.killNow() }
        try await d.waitForAll(1, channels: 1)
        try await waitUntil { try await d.client.send("XLEN", WorkerKeys.deadLetters(of: d.stream)).int == 6 }
        let dead = try await d.client.send("XRANGE", WorkerKeys.deadLetters(of: d.stream), "-", "+").array ?? []
        let reasons = Set(dead.compactMap { entry -> String? in
            let flat = entry.array?.last?.array?.compactMap(\.string) ?? []
            return flat.firstIndex(of: "reason").map { flat[$0 + 1] }
        })
        #expect(reasons == ["missing_channel", "empty_channel", "channel_too_long", "channel_control_characters", "invalid_seq", "oversized"])
        worker.signal(SIGTERM)
        #expect(await worker.wait(timeout: .seconds(60)) == 0)
    }

    /// An oversized entry still has a channel and a seq: dead-lettering records the seq, so the
    /// channel's next message is applied at once rather than after gap-timeout.
    @Test func anOversizedEntryIsDeadLetteredWithItsSeqAndHoldsNothingUp() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        _ = try? await d.client.send("XGROUP", "CREATE", d.stream, "g", "0", "MKSTREAM")
        let producer = Producer(client: d.client, keys: d.keys)
        for blob in ["a", String(repeating: "z", count: 70_000), "c"] {
            _ = try await producer.send(stream: d.stream, channel: "ch0", fields: [StreamField("blob", blob)])
        }
        let worker = try d.worker("w", ["--gap-timeout", "600"])
        defer { worker.killNow() }
        try await waitUntil(timeout: .seconds(120)) {
            try await d.client.send("HGET", d.keys.state(channel: "ch0"), "last_seq").int == 3
        }
        #expect(try await d.client.send("HGET", d.keys.state(channel: "ch0"), "count").int == 2)
        #expect(try await d.client.send("HGET", d.keys.state(channel: "ch0"), "skipped_seqs").isNull, "no gap was skipped")
        let dead = try await d.client.send("XRANGE", WorkerKeys.deadLetters(of: d.stream), "-", "+").array ?? []
        let flat = dead.first?.array?.last?.array?.compactMap(\.string) ?? []
        #expect(flat.firstIndex(of: "reason").map { flat[$0 + 1] } == "oversized")
        #expect(flat.firstIndex(of: "f:seq").map { flat[$0 + 1] } == "2")
        worker.signal(SIGTERM)
        #expect(await worker.wait(timeout: .seconds(60)) == 0)
    }

    /// A message that arrives after gap-timeout applied its successor is dead-lettered: applying
    /// it would break the order, acknowledging it as a duplicate would lose it silently.
    @Test func aMessageArrivingAfterItsSeqWasSkippedIsDeadLettered() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        _ = try? await d.client.send("XGROUP", "CREATE", d.stream, "g", "0", "MKSTREAM")
        for seq in [1, 3] { try await d.client.send("XADD", d.stream, "*", "channel_id", "ch0", "seq", seq) }
        let worker = try d.worker("w", ["--gap-timeout", "1"])
        defer { worker.killNow() }
        try await waitUntil(timeout: .seconds(120)) {
            try await d.client.send("HGET", d.keys.state(channel: "ch0"), "last_seq").int == 3
        }
        try await d.client.send("XADD", d.stream, "*", "channel_id", "ch0", "seq", 2)
        try await waitUntil(timeout: .seconds(120)) { try await d.client.send("XLEN", WorkerKeys.deadLetters(of: d.stream)).int == 1 }
        let dead = try await d.client.send("XRANGE", WorkerKeys.deadLetters(of: d.stream), "-", "+").array ?? []
        let flat = dead.first?.array?.last?.array?.compactMap(\.string) ?? []
        #expect(flat.firstIndex(of: "reason").map { flat[$0 + 1] } == "skipped_seq")
        #expect(flat.firstIndex(of: "f:seq").map { flat[$0 + 1] } == "2")
        #expect(try await d.client.send("HGET", d.keys.state(channel: "ch0"), "count").int == 2, "1 and 3 applied, 2 not")
        #expect(try await d.client.send("XPENDING", d.stream, "g").array?.first?.int == 0)
        worker.signal(SIGTERM)
        #expect(await worker.wait(timeout: .seconds(60)) == 0)
    }

    @Test func aRestartedConsumerResumesItsOwnPendingEntries() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        let channels = 6
        try await d.produce(messages: channels, channels: channels)
        // A long turn, and no reclaiming: only this consumer's own restart can finish the work.
        let options = ["--work-ms", "3000", "--claim-idle", "600", "--lock-ttl", "2"]
        let first = try d.worker("same", options)
        try await waitUntil(timeout: .seconds(60)) {
            (try await d.client.send("XPENDING", d.stream, "g").array?.first?.int ?? 0) == Int64(channels)
        }
        first.killNow()
        #expect(try await d.appliedCount(channels: channels) < Int64(channels))
        let second = try d.worker("same", ["--work-ms", "0", "--claim-idle", "600", "--lock-ttl", "2"])
        defer { second.killNow() }
        try await d.waitForAll(channels, channels: channels, timeout: .seconds(120))
        try await d.verifyHistories(messages: channels, channels: channels)
    }
}
