/// What the partition coordinator asks of the worker around it.
protocol PartitionHost: Sendable {
    /// Claims every pending entry of `streams` for this consumer (the previous owner's included,
    /// without waiting for claim-idle) and dispatches them. Counted as a delivery only when
    /// `countingDeliveries` (the previous owner's lease ran out rather than being given back).
    func takeOver(streams: [String], countingDeliveries: Bool) async
    /// Drops the queued, not yet running messages of `streams`; they stay pending for the next owner.
    func dropQueued(streams: Set<String>) async
    /// Cancels the running messages of `streams`; they stay pending for the next owner.
    func cancelRunning(streams: Set<String>) async
    /// Stops keeping the entries of `streams` fresh (their partition was given up); whatever still
    /// runs of them finishes as usual.
    func forget(streams: Set<String>) async
    /// Accepted, unfinished messages per stream.
    func inFlightByStream() async -> [String: Int]
}
