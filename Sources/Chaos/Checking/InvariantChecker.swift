/// Everything a run left behind that the invariants are judged on.
public struct ChaosObservation: Sendable {
    /// The highest seq produced per channel (seqs 1…n were produced).
    public var produced: [String: Int64]
    /// Each channel's history, in the order the entries were applied.
    public var histories: [String: [HistoryEntry]]
    /// The audit trail, in stream order.
    public var audit: [AuditEvent]
    public var faults: [FaultEvent]

    public init(produced: [String: Int64], histories: [String: [HistoryEntry]], audit: [AuditEvent], faults: [FaultEvent]) {
        self.produced = produced
        self.histories = histories
        self.audit = audit
        self.faults = faults
    }
}

/// What the checker found. Every count named as a violation must be zero for the run to pass.
public struct InvariantResults: Sendable, Equatable, Codable {
    public var policy: ExclusionPolicy
    /// Messages produced.
    public var messages = 0
    /// History entries written (exactly `messages` when all is well).
    public var applied = 0
    /// Violation: a seq applied more than once.
    public var duplicates = 0
    /// Violation: produced seqs never applied.
    public var lost = 0
    /// Violation: a seq applied after a higher one of the same channel.
    public var outOfOrder = 0
    /// Pairs of attempts inside one channel at the same time.
    public var overlaps = 0
    /// Violation: overlaps not allowed by the policy (under `strict`, every overlap).
    public var unresolvedOverlaps = 0
    /// Commits the store refused because the writer's lease had ended (`lost` or `stale`).
    public var rejectedStaleCommits = 0
    /// Attempts given up because the holder saw its lease end before committing (cancelled handler
    /// or `lease_lost` outcome).
    public var abandonedAttempts = 0
    /// Violation: an applied commit whose fence is below the channel's previous applied fence (equal
    /// is one lease's run of messages).
    public var fenceRegressions = 0
    /// Violation: a commit applied under a lease that chaos had stolen.
    public var stolenLeaseCommits = 0
    /// Violation: an applied history entry whose lease left no handler record, so exclusion was not
    /// checked for it (the audit is incomplete: sampled, lost, or written elsewhere).
    public var unauditedCommits = 0
    /// Violation: two different holders inside one channel under the same fence.
    public var sharedFences = 0
    /// Attempts whose commit outcome was not recorded (the worker died first, or the reply was lost)
    /// and that the history cannot settle either; reported, not judged.
    public var unknownOutcomes = 0
    /// Human-readable descriptions of the first violations.
    public var violations: [String] = []

    public init(policy: ExclusionPolicy) {
        self.policy = policy
    }

    public var ok: Bool {
        duplicates + lost + outOfOrder + unresolvedOverlaps + fenceRegressions + stolenLeaseCommits
            + unauditedCommits + sharedFences == 0
    }
}

/// Judges a chaos run: exactly once, per-channel order, exclusion, fencing. Pure; no I/O.
public enum InvariantChecker {
    static let maxViolationsListed = 20

    public static func check(_ observation: ChaosObservation, policy: ExclusionPolicy) -> InvariantResults {
        var results = InvariantResults(policy: policy)
        checkHistories(observation, into: &results)
        let attempts = Attempt.join(observation.audit)
        let evidence = Evidence(observation)
        checkExclusion(attempts, policy: policy, evidence: evidence, into: &results)
        checkAuditCovers(observation, attempts: attempts, into: &results)
        checkFencing(observation, evidence: evidence, into: &results)
        results.abandonedAttempts = attempts.filter { $0.status == .cancelled || $0.outcome == .leaseLost }.count
        results.unknownOutcomes = attempts.filter { $0.outcome == nil && $0.status == .completed && !evidence.settles($0) }.count
        return results
    }

    /// What the histories say about who applied what: the fence each applied seq was written under.
    struct Evidence {
        var appliedUnder: [String: [Int64: Int64]] = [:]

        init(_ observation: ChaosObservation) {
            for (channel, entries) in observation.histories {
                for entry in entries {
                    if let fence = entry.fence, appliedUnder[channel]?[entry.seq] == nil { appliedUnder[channel, default: [:]][entry.seq] = fence }
                }
            }
        }

        /// The attempt's seq was applied exactly by another lease, so this attempt wrote nothing
        /// (the history check separately rejects a seq applied twice).
        func appliedElsewhere(_ attempt: Attempt) -> Bool {
            guard let seq = attempt.seq, let fence = appliedUnder[attempt.channel]?[seq] else { return false }
            return fence != attempt.fence
        }

        /// The history knows which lease applied the attempt's seq, so the attempt's effect is known.
        func settles(_ attempt: Attempt) -> Bool {
            attempt.seq.flatMap { appliedUnder[attempt.channel]?[$0] } != nil
        }

        func changedNothing(_ attempt: Attempt) -> Bool {
            attempt.certainlyNotApplied || appliedElsewhere(attempt)
        }
    }

    /// Exactly once and in order, from the histories the commits wrote.
    static func checkHistories(_ observation: ChaosObservation, into results: inout InvariantResults) {
        results.messages = Int(observation.produced.values.reduce(0, +))
        for channel in Set(observation.produced.keys).union(observation.histories.keys).sorted() {
            let seqs = (observation.histories[channel] ?? []).map(\.seq)
            results.applied += seqs.count
            var seen = Set<Int64>()
            var highest: Int64 = 0
            for seq in seqs {
                if !seen.insert(seq).inserted {
                    results.duplicates += 1
                    note(&results, "channel \(channel): seq \(seq) applied more than once")
                } else if seq < highest {
                    results.outOfOrder += 1
                    note(&results, "channel \(channel): seq \(seq) applied after seq \(highest)")
                }
                highest = max(highest, seq)
            }
            let produced = observation.produced[channel] ?? 0
            let missing = produced > 0 ? (1...produced).filter { !seen.contains($0) } : []
            if !missing.isEmpty {
                results.lost += missing.count
                note(&results, "channel \(channel): \(missing.count) produced seq(s) never applied, first \(missing[0])")
            }
        }
    }

    /// Overlapping attempts per channel, each judged by the policy.
    static func checkExclusion(_ attempts: [Attempt], policy: ExclusionPolicy, evidence: Evidence, into results: inout InvariantResults) {
        for (channel, list) in Dictionary(grouping: attempts, by: \.channel).sorted(by: { $0.key < $1.key }) {
            let sorted = list.sorted { ($0.enterMicros, $0.fence) < ($1.enterMicros, $1.fence) }
            for i in sorted.indices {
                var j = i + 1
                while j < sorted.endIndex, sorted[j].enterMicros < sorted[i].endMicros {
                    let (a, b) = (sorted[i], sorted[j])
                    j += 1
                    if a.fence == b.fence {
                        // One lease is one holder, running its messages one after another (a run's
                        // earlier messages stay inside until the run's commit); anything else means
                        // fences were reused.
                        if a.consumer != b.consumer {
                            results.sharedFences += 1
                            note(&results, "channel \(channel): \(a.consumer) and \(b.consumer) inside at once under one fence \(a.fence)")
                        }
                        continue
                    }
                    results.overlaps += 1
                    let older = a.fence < b.fence ? a : b
                    let resolved = policy == .olderHolderRefused && evidence.changedNothing(older)
                    if !resolved {
                        results.unresolvedOverlaps += 1
                        let why = policy == .strict ? "no fault in this run may end a live holder's lease"
                            : "the older holder (fence \(older.fence)) was not refused: \(older.outcome?.rawValue ?? "outcome unknown")"
                        note(&results, "channel \(channel): \(a.consumer) (fence \(a.fence)) and \(b.consumer) (fence \(b.fence)) inside at once; \(why)")
                    }
                }
            }
        }
    }

    /// Exclusion is judged on the audit, so every applied entry's lease must appear in it: the
    /// auditing handler records the handler's end before the commit is sent (and a failed record
    /// fails the attempt), so a complete audit has a handler record for every applied lease.
    static func checkAuditCovers(_ observation: ChaosObservation, attempts: [Attempt], into results: inout InvariantResults) {
        let audited = Set(attempts.map { FenceKey(channel: $0.channel, fence: $0.fence) })
        for (channel, entries) in observation.histories.sorted(by: { $0.key < $1.key }) {
            for entry in entries {
                guard let fence = entry.fence, !audited.contains(FenceKey(channel: channel, fence: fence)) else { continue }
                results.unauditedCommits += 1
                note(&results, "channel \(channel): seq \(entry.seq) applied under fence \(fence), which the audit never saw")
            }
        }
    }

    /// Applied entries carry non-decreasing fences in apply order (a run applies several under one
    /// lease, and a later lease always has a higher fence); stolen leases never commit.
    /// The history's own fences are authoritative; channels without them fall back to the commit records.
    static func checkFencing(_ observation: ChaosObservation, evidence: Evidence, into results: inout InvariantResults) {
        var applied: [String: [CommitRecord]] = [:]
        for case .committed(let commit) in observation.audit {
            if commit.outcome.isRejection { results.rejectedStaleCommits += 1 }
            if commit.outcome == .applied { applied[commit.channel, default: []].append(commit) }
        }
        let channels = Set(applied.keys).union(observation.histories.keys).sorted()
        for channel in channels {
            let history = observation.histories[channel] ?? []
            var sequence: [(seq: Int64?, fence: Int64)]
            if history.contains(where: { $0.fence != nil }) {
                sequence = history.compactMap { entry in entry.fence.map { (entry.seq, $0) } }
            } else {
                // Apply order is seq order when seqs are known (the commit script enforces it).
                sequence = (applied[channel] ?? []).enumerated().sorted { a, b in
                    (a.element.seq ?? Int64.max, a.offset) < (b.element.seq ?? Int64.max, b.offset)
                }.map { ($0.element.seq, $0.element.fence) }
            }
            for (previous, next) in zip(sequence, sequence.dropFirst()) where next.fence < previous.fence {
                results.fenceRegressions += 1
                note(&results, "channel \(channel): seq \(next.seq.map(String.init) ?? "?") applied with fence \(next.fence) after fence \(previous.fence)")
            }
        }
        let stolen = Set(observation.faults.compactMap(\.stolen))
        var committedStolen = Set<FenceKey>()
        for case .committed(let commit) in observation.audit where commit.outcome == .applied {
            committedStolen.insert(FenceKey(channel: commit.channel, fence: commit.fence))
        }
        for (channel, entries) in observation.histories {
            for entry in entries { if let fence = entry.fence { committedStolen.insert(FenceKey(channel: channel, fence: fence)) } }
        }
        for key in committedStolen.intersection(stolen).sorted(by: { ($0.channel, $0.fence) < ($1.channel, $1.fence) }) {
            results.stolenLeaseCommits += 1
            note(&results, "channel \(key.channel): a write was applied under stolen fence \(key.fence)")
        }
    }

    private static func note(_ results: inout InvariantResults, _ text: String) {
        if results.violations.count < maxViolationsListed { results.violations.append(text) }
    }
}
