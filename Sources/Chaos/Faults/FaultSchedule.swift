import Foundation

/// When to inject which fault during a run, as offsets from the start of the run.
///
/// Two ways to say it, which can be combined:
/// - a rate per fault: `kill,pause:4,steal:2.5` (every N seconds; a bare name uses the default interval),
///   first at `warmup` and then every interval while the run lasts;
/// - explicit times: `kill@3,pause@5.5,steal@8`.
public struct FaultSchedule: Sendable, Equatable {
    /// One planned injection.
    public struct Planned: Sendable, Equatable {
        public var at: Duration
        public var kind: FaultKind

        public init(at: Duration, kind: FaultKind) {
            self.at = at
            self.kind = kind
        }
    }

    /// Injections in time order (ties keep the order the faults were named in).
    public private(set) var planned: [Planned]

    public init(planned: [Planned]) {
        self.planned = planned.enumerated().sorted { ($0.element.at, $0.offset) < ($1.element.at, $1.offset) }.map(\.element)
    }

    /// The fault kinds that appear in the schedule.
    public var kinds: Set<FaultKind> { Set(planned.map(\.kind)) }

    /// Builds a schedule from `--faults` (rates) and `--schedule` (times).
    /// - Parameters:
    ///   - faults: comma-separated `name[:seconds]`; empty for none.
    ///   - times: comma-separated `name@seconds`; empty for none.
    ///   - defaultInterval: interval of a bare fault name.
    ///   - warmup: offset of the first rate-driven injection; rate-driven faults are staggered after it
    ///     so that two kinds never fire at the same instant.
    ///   - duration: rate-driven injections stop before this offset.
    public static func parse(faults: String, times: String = "", defaultInterval: Duration, warmup: Duration,
                             duration: Duration) throws(FaultScheduleError) -> FaultSchedule {
        var planned: [Planned] = []
        let rated = try items(faults).map { item throws(FaultScheduleError) -> (FaultKind, Duration) in
            let parts = item.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            let kind = try kind(parts[0], in: item)
            guard parts.count == 2 else { return (kind, defaultInterval) }
            return (kind, try seconds(parts[1], in: item, positive: true))
        }
        var seen = Set<FaultKind>()
        for (kind, _) in rated where !seen.insert(kind).inserted {
            throw .invalid(item: kind.rawValue, reason: "named twice in --faults")
        }
        guard defaultInterval > .zero else { throw .invalid(item: "interval", reason: "must be positive") }
        for (index, (kind, interval)) in rated.enumerated() {
            // Stagger the kinds over the first interval so they interleave instead of colliding.
            var at = warmup + interval * (Double(index) / Double(max(rated.count, 1)))
            while at < duration {
                planned.append(Planned(at: at, kind: kind))
                at += interval
            }
        }
        for item in try items(times) {
            let parts = item.split(separator: "@", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 2 else { throw .invalid(item: item, reason: "expected name@seconds, e.g. kill@3") }
            planned.append(Planned(at: try seconds(parts[1], in: item, positive: false), kind: try kind(parts[0], in: item)))
        }
        return FaultSchedule(planned: planned)
    }

    private static func items(_ text: String) throws(FaultScheduleError) -> [String] {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if trimmed.isEmpty || trimmed == "none" { return [] }
        return trimmed.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
    }

    private static func kind(_ name: String, in item: String) throws(FaultScheduleError) -> FaultKind {
        guard let kind = FaultKind(rawValue: name.lowercased()) else {
            throw .invalid(item: item, reason: "unknown fault '\(name)' (known: \(FaultKind.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        return kind
    }

    private static func seconds(_ text: String, in item: String, positive: Bool) throws(FaultScheduleError) -> Duration {
        let bare = text.hasSuffix("s") ? String(text.dropLast()) : text
        guard let value = Double(bare), value.isFinite, positive ? value > 0 : value >= 0 else {
            throw .invalid(item: item, reason: "'\(text)' is not a \(positive ? "positive" : "non-negative") number of seconds")
        }
        // Bounds keep the schedule finite: at least 1 ms between faults, at most a day.
        guard value <= 86_400 else { throw .invalid(item: item, reason: "'\(text)' is more than a day") }
        let milliseconds = Int64((value * 1000).rounded())
        if positive, milliseconds < 1 { throw .invalid(item: item, reason: "'\(text)' is shorter than 1 ms") }
        return .milliseconds(milliseconds)
    }
}

/// A `--faults` or `--schedule` value that cannot be understood.
public enum FaultScheduleError: Error, Sendable, Equatable, CustomStringConvertible {
    case invalid(item: String, reason: String)

    public var description: String {
        switch self {
        case .invalid(let item, let reason): return "fault '\(item)': \(reason)"
        }
    }
}
