import Foundation

/// The outcome of one chaos run: what was done to the pool and what the checker found.
public struct ChaosReport: Sendable, Codable, Equatable {
    public var workers: Int
    public var channels: Int
    public var seconds: Double
    /// Injections per fault kind.
    public var faultsInjected: [String: Int]
    public var faults: [FaultEvent]
    public var invariants: InvariantResults
    /// Every produced message was acknowledged before the drain timeout.
    public var drained: Bool
    /// Problems with the run itself (a worker that exited on its own, a drain timeout).
    public var problems: [String]
    /// Faults that could not be injected (nothing to hit, Redis busy restarting); they do not fail the run.
    public var notes: [String]
    /// Exit status 0 only when this holds.
    public var ok: Bool

    public init(workers: Int, channels: Int, seconds: Double, faults: [FaultEvent], invariants: InvariantResults,
                drained: Bool, problems: [String], notes: [String] = []) {
        self.workers = workers
        self.channels = channels
        self.seconds = seconds
        self.faults = faults
        self.faultsInjected = Dictionary(grouping: faults, by: \.kind.rawValue).mapValues(\.count)
        self.invariants = invariants
        self.drained = drained
        self.problems = problems
        self.notes = notes
        self.ok = invariants.ok && drained && problems.isEmpty
    }

    /// One JSON object (snake_case keys, sorted), for `--json`.
    public func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }

    /// The table people read: one line per figure, violations marked.
    public func table() -> String {
        let r = invariants
        let kinds = faultsInjected.sorted { (FaultKind(rawValue: $0.key) ?? .restart) < (FaultKind(rawValue: $1.key) ?? .restart) }
        let breakdown = kinds.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        let overlapNote = r.policy == .strict ? "none allowed: no fault ends a live holder's lease"
            : "allowed when the older holder's write was refused"
        var rows: [(String, String, String)] = [
            ("faults injected", "\(faults.count)", breakdown.isEmpty ? "" : "(\(breakdown))"),
            ("messages", "\(r.messages)", ""),
            ("applied", "\(r.applied)", ""),
            ("duplicates", "\(r.duplicates)", Self.verdict(r.duplicates)),
            ("lost", "\(r.lost)", Self.verdict(r.lost)),
            ("out-of-order", "\(r.outOfOrder)", Self.verdict(r.outOfOrder)),
            ("overlaps", "\(r.overlaps)", overlapNote),
            ("unresolved overlaps", "\(r.unresolvedOverlaps)", Self.verdict(r.unresolvedOverlaps)),
            ("rejected stale commits", "\(r.rejectedStaleCommits)", "late writes refused as lost or stale"),
            ("abandoned attempts", "\(r.abandonedAttempts)", "holder saw its lease end and stopped"),
            ("fence regressions", "\(r.fenceRegressions)", Self.verdict(r.fenceRegressions)),
            ("stolen leases committed", "\(r.stolenLeaseCommits)", Self.verdict(r.stolenLeaseCommits)),
            ("unaudited commits", "\(r.unauditedCommits)", Self.verdict(r.unauditedCommits)),
            ("shared fences", "\(r.sharedFences)", Self.verdict(r.sharedFences)),
        ]
        if r.unknownOutcomes > 0 { rows.append(("unknown outcomes", "\(r.unknownOutcomes)", "worker died before recording")) }
        let width = rows.map(\.0.count).max() ?? 0
        var lines = ["chaos: \(workers) workers, \(r.messages) messages over \(channels) channels, \(String(format: "%.1f", seconds)) s"]
        for (name, value, note) in rows {
            let line = "  " + name.padding(toLength: width, withPad: " ", startingAt: 0) + "  "
                + value.padding(toLength: max(8, value.count), withPad: " ", startingAt: 0) + "  " + note
            lines.append(String(line.reversed().drop(while: { $0 == " " }).reversed()))
        }
        for note in notes { lines.append("note: \(note)") }
        for problem in problems { lines.append("problem: \(problem)") }
        for violation in r.violations { lines.append("violation: \(violation)") }
        lines.append("result: \(ok ? "PASS" : "FAIL")")
        return lines.joined(separator: "\n")
    }

    private static func verdict(_ count: Int) -> String { count == 0 ? "ok" : "VIOLATION" }
}
