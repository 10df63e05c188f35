/// Feeds entries to a ``StreamImporter`` at the pace a ``Pacer`` allows, in pipelined batches.
/// Import and copy share it, so both skip present ids and keep timing the same way.
public struct ReplayRun: Sendable {
    public let importer: StreamImporter
    public private(set) var pacer: Pacer
    public let batchSize: Int
    public private(set) var summary = ImportSummary()
    private var batch: [ExportedEntry] = []
    private var index = 0
    private var start: ContinuousClock.Instant?
    private var predictedLastIDs: [String: StreamID] = [:]

    public init(importer: StreamImporter, pacer: Pacer, batchSize: Int = 128) {
        self.importer = importer
        self.pacer = pacer
        self.batchSize = max(1, batchSize)
    }

    /// Adds `entries` in order; returns how many entries have been handled so far.
    /// `progress` hears that count after every wait, so a paced run reports as it goes.
    @discardableResult
    public mutating func feed(_ entries: [ExportedEntry], progress: (Int) -> Void = { _ in }) async throws -> Int {
        let clock = ContinuousClock()
        let start = self.start ?? clock.now
        self.start = start
        for entry in entries {
            let due = start + pacer.offset(index: index, id: entry.id.flatMap(StreamID.init))
            index += 1
            if due > clock.now {
                // Whatever is due already goes out before the wait, so a slow pace never holds entries back.
                try await flush()
                progress(summary.read)
                try await Task.sleep(until: due, clock: clock)
            }
            batch.append(entry)
            if batch.count >= batchSize { try await flush() }
        }
        if !pacer.isUnpaced { try await flush() }
        return summary.read + batch.count
    }

    /// Sends what is still buffered; call once after the last ``feed(_:)``.
    public mutating func finish() async throws -> ImportSummary {
        try await flush()
        return summary
    }

    private mutating func flush() async throws {
        guard !batch.isEmpty else { return }
        let outcomes = try await importer.add(batch, predictedLastIDs: &predictedLastIDs)
        batch.removeAll(keepingCapacity: true)
        for outcome in outcomes { summary.record(outcome) }
    }
}
