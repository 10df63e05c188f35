/// A fault `sgctl chaos` can inject into a running pool.
public enum FaultKind: String, Sendable, CaseIterable, Codable, Comparable {
    /// SIGKILL a worker, then start a fresh one.
    case kill
    /// SIGSTOP a worker for longer than the lock TTL, then SIGCONT.
    case pause
    /// Delete or overwrite a held `…:lock:channel:*` key.
    case steal
    /// CLIENT KILL every connection of one worker.
    case connkill
    /// Restart the Redis server (AOF on), only when the chaos run started it.
    case restart
    /// Start one more worker: partitions move to it cooperatively.
    case join
    /// SIGTERM a worker: it drains, hands its partitions over and must exit 0.
    case leave
    /// Start one more worker and SIGKILL another while partitions are moving.
    case joinkill
    /// Redis Cluster: `CLUSTER FAILOVER` on a replica of the primary serving a partition.
    case failover
    /// Redis Cluster: move a partition's slot to another primary, key by key (ASK, then MOVED).
    case reshard

    /// Whether the fault can end a lease while its holder is still running. Only then may two
    /// workers be inside one channel at once, and only if the older holder's write is refused.
    /// A kill ends the holder with its lease, so it keeps strict exclusion, and so do the
    /// cooperative hand-overs of a join or a leave.
    public var endsLeasesOfLiveHolders: Bool {
        switch self {
        case .kill, .join, .leave, .joinkill: return false
        // A failover or a slot move can stall renewals past the TTL; the late commit must then be refused.
        case .pause, .steal, .connkill, .restart, .failover, .reshard: return true
        }
    }

    /// Faults that need a Redis Cluster (`--redis-url redis+cluster://…`).
    public var needsCluster: Bool { self == .failover || self == .reshard }

    public static func < (a: FaultKind, b: FaultKind) -> Bool {
        (allCases.firstIndex(of: a) ?? 0) < (allCases.firstIndex(of: b) ?? 0)
    }
}
