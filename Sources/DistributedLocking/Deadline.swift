import Synchronization

/// Runs `operation` but stops waiting for it at `deadline` (returning nil). The operation itself
/// keeps running to completion in the background; only the wait is bounded.
func waitForResult<T: Sendable>(
    until deadline: ContinuousClock.Instant,
    _ operation: @escaping @Sendable () async -> T
) async -> T? {
    let slot = Mutex<CheckedContinuation<T?, Never>?>(nil)
    let resumeOnce: @Sendable (T?) -> Void = { value in
        slot.withLock { continuation in
            continuation?.resume(returning: value)
            continuation = nil
        }
    }
    return await withCheckedContinuation { continuation in
        slot.withLock { $0 = continuation }
        Task { resumeOnce(await operation()) }
        Task {
            try? await Task.sleep(until: deadline, clock: .continuous)
            resumeOnce(nil)
        }
    }
}
