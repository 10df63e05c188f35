/// What "no two workers inside one channel at once" means for a run, given its faults.
public enum ExclusionPolicy: String, Sendable, Codable {
    /// No overlap at all. Holds when no fault can end the lease of a holder that keeps running
    /// (no faults, or only `kill`).
    case strict
    /// Overlaps may happen (a paused holder outlives its TTL, a stolen key lets the next worker in,
    /// a connection or server loss lets a lease expire), but in every overlap the attempt with the
    /// lower fence, the older holder, must have changed nothing: its commit was refused (`lost` or
    /// `stale`) or it never committed because it saw the loss and was cancelled.
    case olderHolderRefused = "older_holder_refused"

    public static func forFaults(_ kinds: Set<FaultKind>) -> ExclusionPolicy {
        kinds.contains(where: \.endsLeasesOfLiveHolders) ? .olderHolderRefused : .strict
    }
}
