import ArgumentParser
import Chaos
import Foundation
import Logging
import RedisClient
import StreamWorker

/// Runs a pool of stream-consumer processes under injected faults and checks the invariants.
struct ChaosCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chaos",
        abstract: "Chaos-test lease loss: run a worker pool, inject faults, check exactly-once, order and exclusion.",
        discussion: """
            Starts --workers stream-consumer processes (built next to sgctl) on a fresh key prefix, produces \
            --messages seq-stamped messages over --channels channels spread across --duration seconds, injects \
            faults while the pool works, waits until everything is applied, and checks: every message applied \
            exactly once, per-channel order, exclusion (from the workers' audit trail), increasing fences, and that \
            late commits of stale holders were refused. Exit status 0 only when every invariant holds.

            Faults, as --faults NAME[:SECONDS],... (each repeating every SECONDS, \
            default --interval) or as --schedule NAME@SECONDS,...:
              kill      SIGKILL a worker, then start a fresh one
              pause     SIGSTOP a worker for --pause-ms (default 2.5 x lock
                        TTL), then SIGCONT
              steal     delete or overwrite (alternately) a held lock key
              connkill  CLIENT KILL a worker's connections
              restart   restart Redis with AOF (only without --redis-url:
                        chaos starts its own Redis)
              join      start one more worker (partitions move to it)
              leave     SIGTERM a worker, which must drain and exit 0 (one
                        always stays)
              joinkill  start one more worker and SIGKILL another
                        mid-rebalance
              failover  CLUSTER FAILOVER on a replica of a partition's
                        primary (needs a redis+cluster:// URL)
              reshard   move a partition's slot to another primary, key
                        by key (needs a redis+cluster:// URL)

            Without --redis-url chaos starts a private redis-server (AOF on) and removes it afterwards.
            See docs/chaos.md for what each invariant means under each fault.
            """
    )

    @Option(help: "Redis URL to run against; without it chaos starts its own redis-server (needed for restart).")
    var redisURL: String?
    @Option(help: "redis-server executable for a Redis of its own.") var redisServer = "redis-server"
    @Option(help: "Faults with optional intervals in seconds, e.g. kill,pause:4,steal:2 ('none' for none).")
    var faults = "kill,pause,steal,connkill"
    @Option(help: "Faults at fixed offsets in seconds, e.g. kill@3,pause@6.") var schedule = ""
    @Option(help: "Default interval between faults of one kind, in seconds.") var interval = 3.0
    @Option(help: "Seconds before the first fault.") var warmup = 1.5
    @Option(help: "Seconds over which messages are produced and faults injected.") var duration = 15.0
    @Option(help: "Messages to produce.") var messages = 1500
    @Option(help: "Channels to spread them over.") var channels = 12
    @Option(help: "Worker processes.") var workers = 3
    @Option(help: "Partition streams (1 for the single-stream layout).") var partitions = 16
    @Option(help: "Lock TTL of the workers, in seconds.") var lockTTL = 1.0
    @Option(help: "How long a pause lasts, in ms (default 2.5 x lock TTL).") var pauseMs: Int?
    @Option(help: "Simulated work per message, in ms.") var workMs = 5
    @Option(help: "Random extra time inside the critical section, up to this many ms.") var jitterMs = 5
    @Option(help: "Channels each worker runs at once.") var concurrency = 8
    @Option(help: "Seconds to wait after the last fault for every message to be applied.") var drainTimeout = 120.0
    @Option(help: "Seed for choosing victims (random by default).") var seed: UInt64?
    @Option(help: "Write a timeline picture (SVG) of the run to this file.") var timeline: String?
    @Option(help: "Directory for the workers' logs (default: a new temporary directory).") var logDir: String?
    @Option(help: "stream-consumer executable (default: next to sgctl).") var streamConsumer: String?
    @Flag(help: "Keep the run's keys in Redis afterwards (they are removed by default).") var keepKeys = false
    @Flag(help: ArgumentHelp(jsonHelp)) var json = false

    func validate() throws {
        if messages < 1 { throw ValidationError("--messages must be at least 1") }
        if channels < 1 { throw ValidationError("--channels must be at least 1") }
        if workers < 1 { throw ValidationError("--workers must be at least 1") }
        if concurrency < 1 { throw ValidationError("--concurrency must be at least 1") }
        if !(duration > 0) { throw ValidationError("--duration must be positive") }
        if !(lockTTL > 0) { throw ValidationError("--lock-ttl must be positive") }
        if !(drainTimeout > 0) { throw ValidationError("--drain-timeout must be positive") }
        if !(interval > 0) { throw ValidationError("--interval must be positive") }
        if !(warmup >= 0) { throw ValidationError("--warmup must not be negative") }
        // Durations become whole milliseconds; a day bounds them so the conversion cannot trap.
        for (name, value) in [("--duration", duration), ("--lock-ttl", lockTTL), ("--drain-timeout", drainTimeout),
                              ("--interval", interval), ("--warmup", warmup)] where value > 86_400 {
            throw ValidationError("\(name) must be at most a day (86400 s)")
        }
        if !(interval * 1000 >= 1) { throw ValidationError("--interval must be at least 1 ms") }
        if let pauseMs, pauseMs < 1 { throw ValidationError("--pause-ms must be positive") }
        if workMs < 0 || jitterMs < 0 { throw ValidationError("--work-ms and --jitter-ms must not be negative") }
    }

    func run() async throws {
        let plan: FaultSchedule
        do {
            plan = try FaultSchedule.parse(faults: faults, times: schedule, defaultInterval: .milliseconds(Int64(interval * 1000)),
                                           warmup: .milliseconds(Int64(warmup * 1000)), duration: .milliseconds(Int64(duration * 1000)))
        } catch {
            throw ValidationError(error.description)
        }
        if plan.kinds.contains(.restart), redisURL != nil { throw ValidationError(ChaosError.restartNeedsOwnRedis.description) }
        if let kind = plan.kinds.sorted().first(where: \.needsCluster), !(redisURL?.lowercased().contains("+cluster://") ?? false) {
            throw ValidationError(ChaosError.needsCluster(kind.rawValue).description)
        }

        var server: ChaosRedisServer?
        let url: String
        if let redisURL {
            url = redisURL
        } else {
            let own = try ChaosRedisServer(executable: Self.resolve(redisServer))
            try await own.start()
            server = own
            url = own.url
        }
        do {
            let report = try await execute(plan: plan, url: url, server: server)
            await server?.stop(removeFiles: true)
            if json {
                print(try report.json())
            } else {
                print(report.table())
            }
            if !report.ok { throw ExitCode(1) }
        } catch {
            await server?.stop(removeFiles: true)
            throw error
        }
    }

    private func execute(plan: FaultSchedule, url: String, server: ChaosRedisServer?) async throws -> ChaosReport {
        var configuration = try RedisConfiguration(url: url)
        configuration.clientName = "sgctl-chaos"
        // Dropped connections are the point of connkill and restart; only errors are worth a line.
        var logger = Logger(label: "sgctl-chaos")
        logger.logLevel = .error
        let client = RedisClient(configuration: configuration, logger: logger)
        defer { client.close() }

        let keys = try layoutKeys(prefix: "chaos" + UUID().uuidString.prefix(8).lowercased(), partitions: partitions)
        let stream = keys.prefix + ":in", audit = keys.prefix + ":audit", group = "g"
        let channelNames = (0..<channels).map { "ch\($0)" }
        for partitionStream in keys.streams(stream) {
            try await client.send("XGROUP", "CREATE", partitionStream, group, "0", "MKSTREAM")
        }

        let logs = URL(fileURLWithPath: logDir ?? FileManager.default.temporaryDirectory.appendingPathComponent("sg-chaos-\(keys.prefix)").path)
        try FileManager.default.createDirectory(at: logs, withIntermediateDirectories: true)
        let ttl = Duration.milliseconds(Int64(lockTTL * 1000))
        let launcher = ConsumerLauncher(
            executable: streamConsumer ?? ConsumerLauncher.siblingExecutable,
            redisURL: url, stream: stream, group: group, keyPrefix: keys.prefix, partitions: partitions,
            options: [
                "--lock-ttl", String(lockTTL), "--claim-idle", String(lockTTL * 2), "--work-ms", String(workMs),
                "--concurrency", String(concurrency), "--batch", "64", "--block-ms", "200", "--history-max", String(messages + 100),
                // Chaos judges exactly-once for valid messages: nothing may be dead-lettered for too
                // many deliveries, and no gap may be skipped by the gap timeout.
                "--max-deliveries", "1000000", "--gap-timeout", "3600", "--shutdown-grace", "5", "--log-level", "info",
            ],
            // Every message audited, whatever the caller's environment says: exclusion is judged on it.
            environment: ["SG_AUDIT_STREAM": audit, "SG_AUDIT_JITTER_MS": String(jitterMs), "SG_AUDIT_SAMPLE": "1"],
            logDirectory: logs)
        let pool = ChaosPool(launcher: launcher)
        let injector = FaultInjector(client: client, pool: pool, keys: keys, server: server, lockTTL: ttl,
                                     pauseFor: pauseMs.map { .milliseconds($0) } ?? ttl * 2.5, auditStream: audit)
        let evidence = ChaosEvidence(client: client, keys: keys, channels: channelNames, stream: stream, group: group)

        let startMicros = wallMicros()
        let start = ContinuousClock.now
        let recorder = keys.isPartitioned ? OwnershipRecorder(client: client, keys: keys, group: group) : nil
        let recording = Task { await recorder?.run() }
        var phase: WorkPhase
        do {
            phase = try await work(pool: pool, plan: plan, injector: injector, evidence: evidence, client: client,
                                   keys: keys, stream: stream, channels: channelNames, start: start)
        } catch {
            // Never leave worker processes behind, whatever went wrong.
            recording.cancel()
            _ = await pool.stopAll(grace: .seconds(5))
            throw error
        }
        phase.problems += await pool.stopAll(grace: .seconds(20))
        recording.cancel()
        await recording.value
        let ownership = await recorder?.trail ?? PartitionOwnershipTrail()
        if keys.isPartitioned {
            phase.notes.append("partitions: \(ownership.handovers) handovers between workers; the longest a partition went without a holder: \(ownership.longestGapMicros / 1000) ms")
        }
        let endMicros = wallMicros()
        let seconds = Double(endMicros - startMicros) / 1_000_000

        let observation = ChaosObservation(
            produced: try await evidence.produced(), histories: try await evidence.histories(),
            audit: try await evidence.audit(stream: audit), faults: phase.faults)
        let results = InvariantChecker.check(observation, policy: .forFaults(plan.kinds))
        if let timeline {
            let picture = Timeline(attempts: Attempt.join(observation.audit), workers: await pool.spans(), faults: phase.faults,
                                   ownership: ownership, startMicros: startMicros, endMicros: endMicros)
            let kinds = plan.kinds.sorted().map(\.rawValue).joined(separator: ", ")
            // Replacements continue their predecessor's lane, so lanes are worker slots; say how many processes ran.
            let processes = picture.processCount > picture.lanes.count ? " (\(picture.processCount) processes)" : ""
            let title = "sgctl chaos: \(workers) workers\(processes), \(results.messages) messages, \(channels) channels, faults: \(kinds.isEmpty ? "none" : kinds)"
            try TimelineSVG.render(picture, title: title).write(toFile: timeline, atomically: true, encoding: .utf8)
        }
        if !keepKeys { try? await evidence.removeKeys() }
        if logDir == nil {
            // Logs of a passing run are noise; a failing run keeps them and says where.
            if results.ok && phase.drained && phase.problems.isEmpty { try? FileManager.default.removeItem(at: logs) }
            else { FileHandle.standardError.write(Data("chaos: worker logs in \(logs.path)\n".utf8)) }
        }
        return ChaosReport(workers: workers, channels: channels, seconds: seconds, faults: phase.faults, invariants: results,
                           drained: phase.drained, problems: phase.problems, notes: phase.notes)
    }

    /// What the working phase of a run left: the faults injected, faults that found nothing to hit,
    /// problems with the run itself, and whether every message got applied.
    struct WorkPhase: Sendable {
        var faults: [FaultEvent] = []
        var notes: [String] = []
        var problems: [String] = []
        var drained = false
    }

    /// Starts the pool, produces and injects faults side by side, then waits for the drain.
    private func work(pool: ChaosPool, plan: FaultSchedule, injector: FaultInjector, evidence: ChaosEvidence, client: RedisClient,
                      keys: WorkerKeys, stream: String, channels: [String], start: ContinuousClock.Instant) async throws -> WorkPhase {
        for _ in 0..<workers { try await pool.startWorker() }
        var phase = await withTaskGroup(of: WorkPhase.self) { group in
            group.addTask {
                let failure = await self.produce(client: client, keys: keys, stream: stream, channels: channels, start: start)
                return WorkPhase(problems: failure.map { [$0] } ?? [])
            }
            group.addTask {
                let (faults, notes, problems) = await self.injectFaults(plan, injector: injector, start: start)
                return WorkPhase(faults: faults, notes: notes, problems: problems)
            }
            var merged = WorkPhase()
            for await part in group {
                merged.faults += part.faults
                merged.notes += part.notes
                merged.problems += part.problems
            }
            return merged
        }
        phase.faults.sort { $0.atMicros < $1.atMicros }

        // Drain: every produced message applied and nothing left pending.
        let drainDeadline = ContinuousClock.now + .milliseconds(Int64(drainTimeout * 1000))
        while ContinuousClock.now < drainDeadline {
            phase.problems += await pool.reapUnexpectedExits()
            if let produced = try? await evidence.produced().values.reduce(0, +),
               let applied = try? await evidence.appliedCount(), let pending = try? await evidence.pendingCount(),
               applied >= produced, pending == 0 {
                phase.drained = true
                break
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        if !phase.drained { phase.problems.append("not every message was applied within --drain-timeout \(drainTimeout) s") }
        return phase
    }

    /// Produces the workload evenly over `duration`, round-robin over the channels. A send that
    /// fails (a restart, a killed connection) is retried; the seq counters tell what was produced.
    private func produce(client: RedisClient, keys: WorkerKeys, stream: String, channels: [String], start: ContinuousClock.Instant) async -> String? {
        let producer = Producer(client: client, keys: keys)
        let spacing = Duration.milliseconds(Int64(duration * 1000)) / messages
        for i in 0..<messages {
            let due = start + spacing * i
            if due > .now { try? await Task.sleep(until: due) }
            let channel = channels[i % channels.count]
            var attempt = 0
            while true {
                do {
                    try await producer.send(stream: stream, channel: channel, fields: [StreamField("n", String(i))])
                    break
                } catch {
                    attempt += 1
                    if attempt >= 300 { return "producing message \(i) kept failing: \(error)" }
                    try? await Task.sleep(for: .milliseconds(100))
                }
            }
        }
        return nil
    }

    private func injectFaults(_ plan: FaultSchedule, injector: FaultInjector, start: ContinuousClock.Instant) async
        -> ([FaultEvent], [String], [String]) {
        var random = SeededRandom(seed: seed ?? UInt64.random(in: 0...UInt64.max))
        var steals = 0
        return await withTaskGroup(of: (FaultEvent?, String?, String?).self) { group in
            for planned in plan.planned {
                try? await Task.sleep(until: start + planned.at)
                let choice = { (names: [String]) in names.randomElement(using: &random) }
                do {
                    switch planned.kind {
                    case .kill:
                        let event = try await injector.kill(pick: choice)
                        group.addTask { (event, event == nil ? "\(planned.kind.rawValue) at \(planned.at): nothing to hit" : nil, nil) }
                    case .pause:
                        // Runs alongside later faults; the victim is chosen now.
                        guard let victim = choice(await injector.candidates()) else {
                            group.addTask { (nil, "pause at \(planned.at): no live worker to pause", nil) }
                            continue
                        }
                        group.addTask { (await injector.pause(pick: { _ in victim }), nil, nil) }
                    case .steal:
                        steals += 1
                        let event = try await injector.steal(overwrite: steals % 2 == 0, pick: choice)
                        group.addTask { (event, event == nil ? "\(planned.kind.rawValue) at \(planned.at): nothing to hit" : nil, nil) }
                    case .connkill:
                        let event = try await injector.killConnections(pick: choice)
                        group.addTask { (event, event == nil ? "\(planned.kind.rawValue) at \(planned.at): nothing to hit" : nil, nil) }
                    case .join:
                        let event = try await injector.join()
                        group.addTask { (event, nil, nil) }
                    case .leave:
                        // Runs alongside later faults: a drain takes a while. The victim is chosen now.
                        guard let victim = choice(await injector.candidates()) else {
                            group.addTask { (nil, "leave at \(planned.at): no live worker", nil) }
                            continue
                        }
                        group.addTask {
                            guard let (event, problem) = await injector.leave(grace: .seconds(25), pick: { _ in victim }) else {
                                return (nil, "leave at \(planned.at): only one worker left", nil)
                            }
                            return (event, nil, problem)
                        }
                    case .joinkill:
                        let event = try await injector.joinKill(pick: choice)
                        group.addTask { (event, event == nil ? "\(planned.kind.rawValue) at \(planned.at): nothing to hit" : nil, nil) }
                    case .failover:
                        let event = try await injector.failover(pick: choice)
                        group.addTask { (event, event == nil ? "\(planned.kind.rawValue) at \(planned.at): nothing to hit" : nil, nil) }
                    case .reshard:
                        // Runs alongside later faults: a slot moves key by key.
                        guard let stream = choice(injector.streams) else { continue }
                        let targetIndex = Int.random(in: 0..<1024, using: &random)
                        group.addTask {
                            do {
                                let event = try await injector.reshard(stream: stream, targetIndex: targetIndex)
                                return (event, event == nil ? "reshard at \(planned.at): nothing to hit" : nil, nil)
                            } catch {
                                return (nil, "reshard at \(planned.at) could not be injected: \(error)", nil)
                            }
                        }
                    case .restart:
                        let event = try await injector.restartServer()
                        group.addTask { (event, event == nil ? "\(planned.kind.rawValue) at \(planned.at): nothing to hit" : nil, nil) }
                    }
                } catch {
                    let text = "\(planned.kind.rawValue) at \(planned.at) could not be injected: \(error)"
                    group.addTask { (nil, text, nil) }
                }
            }
            var events: [FaultEvent] = [], notes: [String] = [], problems: [String] = []
            for await (event, note, problem) in group {
                if let event { events.append(event) }
                if let note { notes.append(note) }
                if let problem { problems.append(problem) }
            }
            return (events, notes, problems)
        }
    }

    /// A bare executable name is looked up on PATH.
    static func resolve(_ executable: String) throws -> String {
        if executable.contains("/") {
            guard FileManager.default.isExecutableFile(atPath: executable) else {
                throw ValidationError("--redis-server \(executable) is not an executable file")
            }
            return executable
        }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = "\(directory)/\(executable)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw ValidationError("\(executable) not found on PATH (install redis-server, or pass --redis-server or --redis-url)")
    }
}
