import Chaos
import DistributedLocking
import Foundation
import RedisClient
import StreamWorker

/// Carries out one fault against the pool or the server and says what it did. A fault that finds
/// nothing to hit (no live worker, no held lock) returns nil and is not counted.
struct FaultInjector: Sendable {
    let client: RedisClient
    let pool: ChaosPool
    let keys: WorkerKeys
    /// Set only when the run started Redis itself.
    let server: ChaosRedisServer?
    let lockTTL: Duration
    let pauseFor: Duration
    /// The workers' audit stream: its tail tells who is inside a channel right now.
    let auditStream: String

    /// Live workers, narrowed to those inside a channel right now when there are any: a fault
    /// that hits a holder mid-turn is the one that tests lease loss.
    func candidates() async -> [String] {
        let live = await pool.live()
        guard let tail = try? await client.send("XREVRANGE", auditStream, "+", "-", "COUNT", 400).array else { return live }
        let events = tail.reversed().compactMap { entry -> AuditEvent? in
            (try? entry.array?.last?.stringHash(from: "XREVRANGE \(auditStream)")).flatMap { AuditEvent(fields: $0) }
        }
        let inside = AuditEvent.workersInside(Array(events))
        let busy = live.filter(inside.contains)
        return busy.isEmpty ? live : busy
    }

    /// SIGKILL one live worker and start a fresh one in its place.
    func kill(pick: ([String]) -> String?) async throws -> FaultEvent? {
        guard let victim = pick(await candidates()) else { return nil }
        let at = wallMicros()
        await pool.kill(victim)
        let replacement = try await pool.startWorker()
        return FaultEvent(kind: .kill, atMicros: at, worker: victim, replacement: replacement,
                          detail: "SIGKILL \(victim), started \(replacement)")
    }

    /// Starts one more worker; the pool rebalances partitions onto it.
    func join() async throws -> FaultEvent {
        let at = wallMicros()
        let name = try await pool.startWorker()
        return FaultEvent(kind: .join, atMicros: at, worker: name, detail: "started \(name)")
    }

    /// SIGTERMs one live worker and waits for it to drain; it must exit 0 within its grace.
    /// Keeps at least one worker running. Returns the event and, if the exit was unclean, a problem.
    func leave(grace: Duration, pick: ([String]) -> String?) async -> (FaultEvent, String?)? {
        let live = await pool.live()
        guard live.count > 1, let victim = pick(live) else { return nil }
        let at = wallMicros()
        let status = await pool.stop(victim, grace: grace)
        let problem = status == 0 ? nil : "leave: \(victim) did not drain cleanly (status \(status.map(String.init) ?? "timeout"))"
        return (FaultEvent(kind: .leave, atMicros: at, untilMicros: wallMicros(), worker: victim,
                           detail: "SIGTERM \(victim), exited \(status.map(String.init) ?? "after SIGKILL")"), problem)
    }

    /// Starts one more worker and, while partitions move to it, SIGKILLs another (replaced, as a kill is).
    func joinKill(pick: ([String]) -> String?) async throws -> FaultEvent? {
        let at = wallMicros()
        let joined = try await pool.startWorker()
        // Late enough that the newcomer is in the membership and owners are shedding to it.
        try await Task.sleep(for: .milliseconds(700))
        guard let victim = pick(await candidates().filter { $0 != joined }) else { return nil }
        await pool.kill(victim)
        let replacement = try await pool.startWorker()
        return FaultEvent(kind: .joinkill, atMicros: at, worker: victim, replacement: replacement,
                          detail: "started \(joined), SIGKILL \(victim) mid-rebalance, started \(replacement)")
    }

    /// SIGSTOP one live worker for `pauseFor` (longer than the lock TTL), then SIGCONT.
    func pause(pick: ([String]) -> String?) async -> FaultEvent? {
        guard let victim = pick(await candidates()) else { return nil }
        let at = wallMicros()
        await pool.pause(victim)
        try? await Task.sleep(for: pauseFor)
        await pool.resume(victim)
        return FaultEvent(kind: .pause, atMicros: at, untilMicros: wallMicros(), worker: victim,
                          detail: "SIGSTOP \(victim) for \(Self.milliseconds(pauseFor)) ms, then SIGCONT")
    }

    /// Takes a held channel lock away: DEL it, or overwrite it with an intruder token that keeps
    /// everyone out for one TTL. Waits up to a second for some lock to be held.
    func steal(overwrite: Bool, pick: ([String]) -> String?) async throws -> FaultEvent? {
        let deadline = ContinuousClock.now + .seconds(1)
        while ContinuousClock.now < deadline {
            let held = try await scan(match: keys.pattern("lock"))
            if let key = pick(held) {
                let reply = try await client.evaluate(
                    ChaosScripts.steal, keys: [key, LockKeys.fenceKey(forLock: key)],
                    arguments: [overwrite ? "overwrite" : "del", "chaos-intruder", String(Self.milliseconds(lockTTL))])
                if let parts = reply.array, parts.count == 2, let fence = parts[1].string.flatMap({ Int64($0) }) {
                    let channel = keys.channel(inKey: key, kind: "lock") ?? key
                    let how = overwrite ? "overwrote \(key) for \(Self.milliseconds(lockTTL)) ms" : "DEL \(key)"
                    return FaultEvent(kind: .steal, atMicros: wallMicros(), stolen: FenceKey(channel: channel, fence: fence),
                                      detail: "\(how) (holder's fence \(fence))")
                }
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        return nil
    }

    /// CLIENT KILL every connection of one live worker (found by its `stream-consumer:<name>` client name).
    func killConnections(pick: ([String]) -> String?) async throws -> FaultEvent? {
        guard let victim = pick(await candidates()) else { return nil }
        let at = wallMicros()
        var killed = 0
        // On a cluster the worker has connections to every primary.
        for connection in try await client.primaryConnections() {
            let list = try await connection.send("CLIENT", "LIST").string ?? ""
            let ids = list.split(whereSeparator: \.isNewline).compactMap { line -> String? in
                let fields = Self.clientFields(String(line))
                return fields["name"] == "stream-consumer:\(victim)" ? fields["id"] : nil
            }
            for id in ids {
                killed += Int(try await connection.send("CLIENT", "KILL", "ID", id).int ?? 0)
            }
        }
        // Nothing killed is no fault: the report counts only faults that happened.
        guard killed > 0 else { return nil }
        return FaultEvent(kind: .connkill, atMicros: at, worker: victim, detail: "CLIENT KILL \(killed) connection(s) of \(victim)")
    }

    /// The run's partition streams.
    var streams: [String] { keys.streams(keys.prefix + ":in") }

    /// `CLUSTER FAILOVER` on a replica of the primary that serves a random partition stream.
    func failover(pick: ([String]) -> String?) async throws -> FaultEvent? {
        guard client.isCluster else { throw ChaosError.needsCluster("failover") }
        guard let stream = pick(streams) else { return nil }
        let slot = HashSlot.of(stream)
        let at = wallMicros()
        guard let (from, to) = try await client.failOver(slot: slot) else { return nil }
        return FaultEvent(kind: .failover, atMicros: at, untilMicros: wallMicros(),
                          detail: "CLUSTER FAILOVER: \(to) took over from \(from) (slot \(slot), \(stream))")
    }

    /// Moves the slot of partition stream `stream` to another primary (the `targetIndex`th of the
    /// others, modulo their count), key by key.
    func reshard(stream: String, targetIndex: Int) async throws -> FaultEvent? {
        guard client.isCluster else { throw ChaosError.needsCluster("reshard") }
        await client.refreshClusterTopology()
        let slot = HashSlot.of(stream)
        guard let topology = client.clusterTopology, let source = topology.primary(forSlot: slot) else { return nil }
        let others = topology.primaries.filter { $0 != source }
        guard !others.isEmpty else { return nil }
        let target = others[abs(targetIndex) % others.count]
        let at = wallMicros()
        let moved = try await client.moveSlot(slot, to: target, batch: 10, pause: .milliseconds(20))
        return FaultEvent(kind: .reshard, atMicros: at, untilMicros: wallMicros(),
                          detail: "moved slot \(slot) (\(stream)) from \(source) to \(target): \(moved) keys")
    }

    /// Restarts the run's own Redis (SIGTERM, which flushes the AOF, then the same port and directory).
    func restartServer() async throws -> FaultEvent? {
        guard let server else { throw ChaosError.restartNeedsOwnRedis }
        let at = wallMicros()
        try await server.restart()
        return FaultEvent(kind: .restart, atMicros: at, untilMicros: wallMicros(), detail: "restarted redis-server with AOF on the same port")
    }

    /// One CLIENT LIST line (`id=5 addr=… name=…`) as a dictionary.
    static func clientFields(_ line: String) -> [String: String] {
        var fields: [String: String] = [:]
        for part in line.split(separator: " ") {
            let pair = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            if pair.count == 2 { fields[String(pair[0])] = String(pair[1]) }
        }
        return fields
    }

    private func scan(match: String) async throws -> [String] {
        try await client.scanKeys(matching: match)
    }

    static func milliseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
    }
}
