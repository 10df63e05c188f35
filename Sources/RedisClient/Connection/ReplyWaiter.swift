/// Who gets a reply once it arrives.
///
/// The continuations are unsafe ones (a checked one allocates per command): every queued
/// ``Outgoing`` is completed exactly once, by its reply or by the failure that drops it.
enum ReplyWaiter: Sendable {
    case single(UnsafeContinuation<RESPValue, any Error>)
    case batch(BatchCollector, index: Int)
    /// Fire-and-forget commands the connection sends itself (re-subscribes after a reconnect).
    case discard
    /// Runs on the I/O thread when the reply arrives.
    case callback(@Sendable (Result<RESPValue, RedisError>) -> Void)

    func complete(_ result: Result<RESPValue, RedisError>) {
        switch self {
        case .single(let continuation):
            continuation.resume(with: result.mapError { $0 as any Error })
        case .batch(let collector, let index):
            collector.set(index, result)
        case .discard:
            break
        case .callback(let callback):
            callback(result)
        }
    }
}

/// Gathers the replies of one pipelined batch and resumes its caller once all have arrived.
///
/// `@unchecked Sendable`: `results` and `remaining` are only touched by the owning connection's
/// I/O thread, which completes replies strictly one at a time; the continuation is resumed once.
final class BatchCollector: @unchecked Sendable {
    private var results: [Result<RESPValue, RedisError>]
    private var remaining: Int
    private let continuation: UnsafeContinuation<[Result<RESPValue, RedisError>], Never>

    init(count: Int, continuation: UnsafeContinuation<[Result<RESPValue, RedisError>], Never>) {
        self.results = Array(repeating: .failure(.closed), count: count)
        self.remaining = count
        self.continuation = continuation
    }

    func set(_ index: Int, _ result: Result<RESPValue, RedisError>) {
        results[index] = result
        remaining -= 1
        if remaining == 0 { continuation.resume(returning: results) }
    }
}
