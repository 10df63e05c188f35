/// Every retry, backoff, run-size and gap decision of message processing, in one place.
///
/// Pure: it is told the counts and instants and answers with durations and yes/no, so every rule
/// is tested without a clock or a Redis.
struct ProcessingPolicy: Sendable, Equatable {
    /// Handler failures of one message before it is left pending (redelivered later, and
    /// dead-lettered after max-deliveries).
    var handlerAttempts = 3
    /// Lost leases, stale or failed commits of one run before what is left of it is left pending.
    var maxRetries = 10
    /// How long a message behind a gap waits for its predecessors before it is applied anyway.
    var gapTimeout: Duration = .seconds(30)
    /// At most this many consecutive messages of a channel run under one lease and one commit.
    var runLimit = 32
    /// No further message of a run starts once the run has taken this long, so one busy channel
    /// cannot keep its slot while others wait.
    var runBudget: Duration = .milliseconds(200)

    /// The pause before the `failures`-th retry of a failed handler: 100 ms, 200 ms, 400 ms, …
    func handlerBackoff(failures: Int) -> Duration {
        .milliseconds(50) * (1 << min(max(failures, 1), 10))
    }

    /// The pause after a failed commit (a connection error) before the run is claimed again.
    var commitRetryPause: Duration { .milliseconds(50) }

    /// How long a channel parked behind a gap waits before it is tried again. With a release
    /// subscription the release normally wakes it first, so the pause is only a bound; without
    /// one it backs off 5 ms, 10 ms, … up to 200 ms.
    func parkPause(retries: Int, woken: Bool) -> Duration {
        woken ? .milliseconds(250) : .milliseconds(min(200, 5 << min(max(retries, 0), 6)))
    }

    /// Whether a head message that first met a gap at `since` is now applied anyway, skipping the
    /// missing seqs.
    func gapHasTimedOut(since: ContinuousClock.Instant?, now: ContinuousClock.Instant) -> Bool {
        guard let since else { return gapTimeout <= .zero }
        return now >= since + gapTimeout
    }

    /// Whether a run that started at `start` may start one more message at `now`.
    func runMayContinue(started start: ContinuousClock.Instant, now: ContinuousClock.Instant) -> Bool {
        start.duration(to: now) < runBudget
    }
}
