import ArgumentParser
import Chaos
import Foundation
import RedisClient
import StreamTools
import StreamWorker

/// Produces a workload, runs K stream-consumer processes until everything is acknowledged,
/// verifies the histories, and reports throughput, latency, commands per message and peak RSS.
struct BenchWorker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Throughput and latency of a pool of stream-consumer processes (built next to sgctl)."
    )

    @OptionGroup var redis: RedisOptions
    @Option(help: "Messages to produce.") var messages = 20_000
    @Option(help: "Channels to spread them over.") var channels = 200
    @Option(help: "Worker processes; a comma-separated list (1,3) runs each pool on a fresh workload and prints the ratios.")
    var workers = "1"
    @Option(help: "Partition streams (1 is the single-stream layout).") var partitions = 16
    @Option(help: "Simulated work per message, in ms.") var workMs = 0
    @Option(help: "Each worker's --concurrency (default: the worker's).") var concurrency: Int?
    @Option(help: "Each worker's --batch, entries per read (default: the worker's).") var batch: Int?
    @Option(help: "Messages per produce call: 1 sends each in a script call of its own (every channel's producer at once); more sends one message per channel in turn, in batches of this many, one call per partition.")
    var produceBatch = 200
    @Flag(help: "Drain a backlog: the settled pool is stopped (SIGSTOP) while the whole workload is produced, then resumed and timed until it is done, so producing takes no CPU from the timed part. No latency is measured (every message waited for the resume).")
    var backlog = false
    @Option(help: "Measure enqueue→commit latency on one message in N (an audit XADD each; 0 turns it off).")
    var latencySample = 16
    @Flag(help: ArgumentHelp(jsonHelp)) var json = false

    func run() async throws {
        let pools = workers.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !pools.isEmpty, pools.count == workers.split(separator: ",").count, pools.allSatisfy({ $0 >= 1 }) else {
            throw ValidationError("--workers takes positive integers separated by commas, got \(workers)")
        }
        var rates: [Double] = []
        for pool in pools { rates.append(try await runOnce(workers: pool)) }
        if pools.count > 1 {
            let ratios = zip(pools, rates).dropFirst().map { "\($0.0) workers / \(pools[0]): \(String(format: "%.2f", $0.1 / rates[0]))x" }
            if json {
                printJSONLine(["bench": "worker-scaling", "workers": pools, "msgs_per_sec": rates,
                               "ratios": rates.dropFirst().map { $0 / rates[0] }])
            } else {
                print("scaling: " + ratios.joined(separator: ", "))
            }
        }
    }

    /// One pool of `workers` on a fresh deployment; returns its msg/s.
    func runOnce(workers: Int) async throws -> Double {
        let client = try await redis.client()
        defer { client.close() }
        let prefix = "bench" + UUID().uuidString.prefix(8).lowercased()
        let keys = try layoutKeys(prefix: prefix, partitions: partitions)
        let stream = prefix + ":in", audit = prefix + ":audit"
        for partitionStream in keys.streams(stream) {
            try await client.send("XGROUP", "CREATE", partitionStream, "g", "0", "MKSTREAM")
        }
        let producer = Producer(client: client, keys: keys)
        let perChannel = max(1, messages / channels)
        let total = perChannel * channels

        // Draining a backlog, the timed part has no producing to subtract.
        let producingCPU = backlog ? 0 : try await producingAlone(client, perChannel: perChannel)
        let launcher = ConsumerLauncher(
            redisURL: redis.redisURL ?? ProcessInfo.processInfo.environment["SG_REDIS_URL"] ?? ToolConnection.defaultURL, stream: stream, group: "g", keyPrefix: prefix, partitions: partitions,
            options: redis.workerFlags + ["--history-max", String(perChannel), "--work-ms", String(workMs), "--log-level", "error"]
                + (concurrency.map { ["--concurrency", String($0)] } ?? []) + (batch.map { ["--batch", String($0)] } ?? []),
            environment: latencySample > 0 && !backlog ? ["SG_AUDIT_STREAM": audit, "SG_AUDIT_SAMPLE": String(latencySample)] : [:])
        // The pool starts on an empty stream and is timed only once it has settled (every worker
        // reading, partitions where the assignment puts them): the figure is steady throughput.
        let launched = ContinuousClock.now
        let names = (0..<workers).map { "bench-\($0)" }
        let processes = try names.map { try launcher.start($0) }
        defer { processes.forEach { $0.killNow() } }
        try await waitUntilSettled(client, keys: keys, stream: stream, consumers: names, processes: processes)
        let settled = launched.duration(to: .now)

        if backlog {
            processes.forEach { $0.signal(SIGSTOP) }
            for process in processes {
                try await waitUntilStopped(process.pid)
            }
            let producing = ContinuousClock.now
            try await produce(producer, stream: stream, perChannel: perChannel)
            // Past a third of the default lock TTL a stopped worker misses lease renewals, and the
            // timed part would include the pool recovering.
            if producing.duration(to: .now) > .seconds(3) {
                FileHandle.standardError.write(Data("bench: producing took \(fmt(seconds(producing.duration(to: .now)))) s with the pool stopped: leases may have lapsed, so the figure may include a rebalance\n".utf8))
            }
        }
        let roundTripsBefore = try await Self.topLevelCalls(client)
        let redisCPUBefore = try await Self.redisCPUSeconds(client)
        let replicatedCPUBefore = client.isCluster ? try await Self.redisCPUSeconds(client, replicas: true) : 0
        let workerCPUBefore = processes.map { Self.cpuSeconds($0.pid) }.reduce(0, +)
        let start = ContinuousClock.now
        if backlog {
            processes.forEach { $0.signal(SIGCONT) }
        } else {
            try await produce(producer, stream: stream, perChannel: perChannel)
        }
        var peakRSS = 0
        // One pipelined round trip per poll, so the bench itself takes little from Redis or the CPU.
        let progress = keys.streams(stream).map { RedisCommand("XINFO", "GROUPS", $0) }
        while true {
            try await Task.sleep(for: .milliseconds(50))
            var done: Int64 = 0
            for reply in try await client.pipeline(progress) {
                let fields = try (try reply.get().array?.first ?? .array([])).hash(from: "XINFO GROUPS")
                done += (fields["entries-read"]?.int ?? 0) - (fields["pending"]?.int ?? 1)
            }
            peakRSS = max(peakRSS, processes.map { Self.peakRSSKiB($0.pid) }.max() ?? 0)
            if done >= Int64(total) { break }
            var exited = 0
            for process in processes {
                if await process.wait(timeout: .zero) != nil { exited += 1 }
            }
            if exited == processes.count { throw ValidationError("all workers exited early") }
        }
        let elapsed = start.duration(to: .now)
        let roundTrips = try await Self.topLevelCalls(client) - roundTripsBefore
        let redisCPU = try await Self.redisCPUSeconds(client) - redisCPUBefore
        let replicatedCPU = client.isCluster ? try await Self.redisCPUSeconds(client, replicas: true) - replicatedCPUBefore : 0
        let workerCPU = processes.map { Self.cpuSeconds($0.pid) }.reduce(0, +) - workerCPUBefore
        for process in processes { process.signal(SIGTERM) }

        // Latency: XADD time (entry id) to the applied commit, from the sampled audit records.
        var latencies = LatencySamples()
        for record in try await client.send("XRANGE", audit, "-", "+").array ?? [] {
            let f = try (record.array?.last ?? .array([])).stringHash(from: "XRANGE \(audit)")
            guard f["kind"] == "commit", f["outcome"] == "applied", let entry = f["entry"],
                  let ms = entry.split(separator: "-").first.flatMap({ Int64($0) }),
                  let committed = f["at_us"].flatMap({ Int64($0) }) else { continue }
            latencies.add(.microseconds(max(0, committed - ms * 1000)))
        }
        let report = try await Verifier(client: client, keys: keys, stream: stream, historyMax: perChannel).run()
        let rate = Double(total) / seconds(elapsed)
        let roundTripsPerMessage = Double(roundTrips) / Double(total)
        if json {
            var object: [String: Any] = [
                "bench": "worker", "backlog": backlog, "messages": total, "channels": channels, "workers": workers, "partitions": partitions, "produce_batch": max(1, produceBatch), "msgs_per_sec": rate,
                "latency_p50_ms": latencies.percentileMicros(50) / 1000, "latency_p99_ms": latencies.percentileMicros(99) / 1000,
                "round_trips_per_message": roundTripsPerMessage, "peak_rss_kib": peakRSS, "verified": report.ok,
                "pool_settled_ms": seconds(settled) * 1000,
                "worker_cpu_us_per_message": workerCPU * 1e6 / Double(total), "redis_cpu_us_per_message": redisCPU * 1e6 / Double(total),
                "redis_cpu_producing_alone_us_per_message": producingCPU * 1e6 / Double(total),
                "redis_cpu_with_replicas_us_per_message": client.isCluster ? replicatedCPU * 1e6 / Double(total) : redisCPU * 1e6 / Double(total),
            ]
            if backlog {
                object["latency_p50_ms"] = nil
                object["latency_p99_ms"] = nil
            }
            printJSONLine(object)
        } else {
            let latency = backlog ? "no latency (backlog)"
                : "enqueue→commit p50 \(fmt(latencies.percentileMicros(50) / 1000)) ms, p99 \(fmt(latencies.percentileMicros(99) / 1000)) ms"
            print("\(total) messages, \(channels) channels, \(workers) worker(s), \(partitions) partition(s), \(backlog ? "backlog drained" : "\(max(1, produceBatch)) per produce call"): \(fmt(rate)) msg/s, \(latency)")
            print("pool settled \(fmt(seconds(settled) * 1000)) ms after launch (not timed); Redis round trips per message \(String(format: "%.2f", roundTripsPerMessage)), peak worker RSS \(peakRSS / 1024) MiB; \(report.text(keyPrefix: keys.prefix, stream: stream))")
            let replicas = client.isCluster ? " on the primaries, \(fmt(replicatedCPU * 1e6 / Double(total))) µs with the replicas" : ""
            let producing = backlog ? " (produced before timing)"
                : "; producing the same workload alone takes Redis \(fmt(producingCPU * 1e6 / Double(total))) µs"
                + "\(client.isCluster ? " on the primaries" : ""), so the workers' share is about \(fmt(max(0, redisCPU - producingCPU) * 1e6 / Double(total))) µs"
            print("CPU per message: workers \(fmt(workerCPU * 1e6 / Double(total))) µs, Redis \(fmt(redisCPU * 1e6 / Double(total))) µs\(replicas)" + producing)
        }
        if !report.ok { throw ExitCode(1) }
        return rate
    }

    /// Waits until the kernel shows `pid` stopped, so nothing it reads while the workload is
    /// produced counts as untimed work.
    func waitUntilStopped(_ pid: Int32) async throws {
        for _ in 0..<500 {
            if ChildProcess.isStopped(pid) { return }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw ValidationError("worker \(pid) did not stop on SIGSTOP")
    }

    /// The workload: `perChannel` messages on each channel, as `--produce-batch` says.
    func produce(_ producer: Producer, stream: String, perChannel: Int) async throws {
        if produceBatch <= 1 {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for c in 0..<channels {
                    group.addTask { for _ in 0..<perChannel { try await producer.send(stream: stream, channel: "ch\(c)") } }
                }
                try await group.waitForAll()
            }
        } else {
            let round = (0..<channels).map { OutgoingMessage(channel: "ch\($0)") }
            let all = Array(repeatElement(round, count: perChannel).joined())
            for start in stride(from: 0, to: all.count, by: produceBatch) {
                for result in await producer.send(Array(all[start..<min(start + produceBatch, all.count)]), stream: stream) {
                    _ = try result.get()
                }
            }
        }
    }

    /// Redis CPU seconds that producing the workload costs with no worker reading it, measured on a
    /// scratch copy of the layout that is deleted afterwards: the share of the run's Redis CPU that
    /// is the producer's rather than the workers'.
    func producingAlone(_ client: RedisClient, perChannel: Int) async throws -> Double {
        let prefix = "benchp" + UUID().uuidString.prefix(8).lowercased()
        let keys = try layoutKeys(prefix: prefix, partitions: partitions)
        let stream = prefix + ":in"
        let before = try await Self.redisCPUSeconds(client)
        try await produce(Producer(client: client, keys: keys), stream: stream, perChannel: perChannel)
        let cpu = try await Self.redisCPUSeconds(client) - before
        let scratch = keys.streams(stream) + (0..<channels).map { keys.seq(channel: "ch\($0)") }
        for result in try await client.pipeline(scratch.map { RedisCommand("UNLINK", $0) }) { _ = try result.get() }
        return cpu
    }

    /// Until every worker reads: each is a consumer of the group (single stream), or each partition
    /// is held by the member the assignment gives it to (partitioned).
    func waitUntilSettled(_ client: RedisClient, keys: WorkerKeys, stream: String, consumers: [String],
                          processes: [ChildProcess]) async throws {
        let deadline = ContinuousClock.now + .seconds(120)
        let expected = keys.isPartitioned ? PartitionAssignment.owners(partitions: keys.partitions, members: consumers) : []
        while ContinuousClock.now < deadline {
            for process in processes where await process.wait(timeout: .zero) != nil {
                throw ValidationError("a worker exited while the pool started")
            }
            if keys.isPartitioned {
                let byPartition = PartitionOwners.consumers(try await client.send("HGETALL", keys.partitionOwners(group: "g")))
                let leases = try await client.pipeline((0..<keys.partitions).map { RedisCommand("EXISTS", keys.partitionLease($0, group: "g")) })
                let held = try leases.allSatisfy { try $0.get().int == 1 }
                if held && (0..<keys.partitions).allSatisfy({ byPartition[$0] == expected[$0] }) { return }
            } else {
                let reading = try await client.send("XINFO", "CONSUMERS", stream, "g").array?.count ?? 0
                if reading == consumers.count { return }
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw ValidationError("the pool did not settle within 120 s")
    }

    /// Calls of the commands the worker sends as their own round trip. Script-internal calls also
    /// land in commandstats, so only commands the scripts never run are counted: the claim (its state
    /// reads ride in the same round trip) and commit FCALLs, reads, reclaims and idle refreshes.
    /// The audit XADD used for latency is left out.
    static func topLevelCalls(_ client: RedisClient) async throws -> Int64 {
        // Primaries only: a replica counts what replication runs (XREADGROUP arrives there as XCLAIM).
        let info = try await Self.info("commandstats", onEveryNodeOf: client, primariesOnly: true)
        let counted = ["fcall", "xreadgroup", "xautoclaim", "xclaim", "xpending", "subscribe", "unsubscribe", "ssubscribe", "sunsubscribe"]
        var total: Int64 = 0
        for line in info.split(whereSeparator: \.isNewline) {
            guard line.hasPrefix("cmdstat_"), let colon = line.firstIndex(of: ":") else { continue }
            let name = line[line.index(line.startIndex, offsetBy: 8)..<colon]
            let parts = line.split(separator: "calls=")
            guard counted.contains(String(name)), parts.count > 1, let calls = parts[1].split(separator: ",").first else { continue }
            total += Int64(calls) ?? 0
        }
        return total
    }

    /// Redis's own CPU time (user + system), from INFO cpu; on a cluster, of every primary, or of
    /// every node with `replicas`.
    static func redisCPUSeconds(_ client: RedisClient, replicas: Bool = false) async throws -> Double {
        let info = try await Self.info("cpu", onEveryNodeOf: client, primariesOnly: !replicas)
        var total = 0.0
        for line in info.split(whereSeparator: \.isNewline) {
            let parts = line.split(separator: ":")
            if parts.count == 2, parts[0] == "used_cpu_sys" || parts[0] == "used_cpu_user" { total += Double(parts[1]) ?? 0 }
        }
        return total
    }

    /// `INFO section` of the server, or of every node of a cluster, one after another.
    static func info(_ section: String, onEveryNodeOf client: RedisClient, primariesOnly: Bool) async throws -> String {
        guard client.isCluster else { return try await client.send("INFO", section).string ?? "" }
        await client.refreshClusterTopology()
        var text = ""
        for shard in client.clusterTopology?.shards ?? [] {
            for address in [shard.primary] + (primariesOnly ? [] : shard.replicas) {
                let node = client.nodeClient(address)
                defer { node.close() }
                text += (try await node.send("INFO", section).string ?? "") + "\n"
            }
        }
        return text
    }

    /// CPU time (user + system) a live process has used, in seconds, from /proc (0 if it is gone).
    static func cpuSeconds(_ pid: Int32) -> Double {
        guard let fields = ChildProcess.statFields(pid), fields.count > 13,
              let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// VmHWM of a process, in KiB (0 if it is gone).
    static func peakRSSKiB(_ pid: Int32) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }) else { return 0 }
        return Int(line.split(whereSeparator: \.isWhitespace)[1]) ?? 0
    }
}
