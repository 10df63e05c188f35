import Synchronization
import AsyncHTTPClient
import DistributedLocking
import Foundation

/// Hands each message to an HTTP service and applies the state update it answers with
/// (`--handler http --handler-url URL`). The contract is in docs/webhook.md and ``WebhookContract``.
///
/// The request runs under the channel's lock like any handler: the watchdog keeps renewing the
/// lease while it waits, and losing the lease cancels the request. Non-2xx answers, timeouts,
/// transport failures and unusable bodies are thrown as ``WebhookError``, so the worker's
/// handler-failure policy (retry, leave pending, redeliver, dead-letter) applies unchanged.
public struct WebhookHandler: MessageHandler {
    public let url: String
    /// `url` without credentials, for errors and logs.
    private let shownURL: String
    public let timeout: Duration
    /// The list cap for appends that do not name one (the worker's `history-max`).
    public let defaultListCap: Int
    private let client: HTTPClient

    /// - Parameter client: Shared by every request of the process; the caller shuts it down.
    public init(client: HTTPClient, url: String, timeout: Duration, defaultListCap: Int) {
        self.client = client
        self.url = url
        self.shownURL = ConfigurationLoader.redactedWebhookURL(url)
        self.timeout = timeout
        self.defaultListCap = defaultListCap
    }

    public func handle(_ message: InboundMessage, state: ChannelState) async throws -> StateUpdate {
        let fence = LeaseContext.fence
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "Idempotency-Key", value: WebhookContract.idempotencyKey(for: message))
        if let fence { request.headers.add(name: "X-SG-Fence", value: String(fence)) }
        request.body = .bytes(WebhookContract.requestBody(for: message, state: state, fence: fence))

        let (seconds, attoseconds) = timeout.components
        let nanoseconds = seconds * 1_000_000_000 + attoseconds / 1_000_000_000
        let status: UInt
        let body: [UInt8]
        do {
            // The client's own deadline ends when the headers arrive; the body must fit in it too.
            (status, body) = try await Self.withDeadline(timeout) { [client, request] in
                let response = try await client.execute(request, timeout: .nanoseconds(nanoseconds))
                let buffer = try await response.body.collect(upTo: WebhookContract.maxResponseBytes)
                return (response.status.code, Array(buffer.readableBytesView))
            }
        } catch is WebhookDeadline {
            throw WebhookError.timeout(url: shownURL, after: timeout)
        } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout {
            throw WebhookError.timeout(url: shownURL, after: timeout)
        } catch let error as HTTPClientError where error == .cancelled {
            throw CancellationError()
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw WebhookError.transport(url: shownURL, reason: "\(error)")
        }
        guard (200..<300).contains(status) else {
            throw WebhookError.status(url: shownURL, code: status, body: String(decoding: body.prefix(200), as: UTF8.self))
        }
        do throws(WebhookResponseError) {
            return try WebhookContract.stateUpdate(fromResponse: body, defaultCap: defaultListCap)
        } catch {
            throw WebhookError.invalidResponse(url: shownURL, error)
        }
    }
}

/// Why a webhook call did not produce a state update. Every case is a handler failure.
public enum WebhookError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No answer within `handler-timeout`.
    case timeout(url: String, after: Duration)
    /// The service answered with a status outside 2xx; `body` is the start of its answer.
    case status(url: String, code: UInt, body: String)
    /// A 2xx answer whose body is not a valid state update.
    case invalidResponse(url: String, WebhookResponseError)
    /// Connecting, sending or reading failed.
    case transport(url: String, reason: String)

    public var description: String {
        switch self {
        case .timeout(let url, let after): return "webhook \(url) did not answer within \(after)"
        case .status(let url, let code, let body): return "webhook \(url) answered \(code): \(body)"
        case .invalidResponse(let url, let error): return "webhook \(url): \(error)"
        case .transport(let url, let reason): return "webhook \(url) failed: \(reason)"
        }
    }
}

/// The whole exchange outlived `handler-timeout`.
struct WebhookDeadline: Error {}

extension WebhookHandler {
    /// Runs `operation` and stops waiting for it after `timeout` (or when the caller is cancelled),
    /// cancelling it. Unlike a task group, it does not wait for an operation that ignores
    /// cancellation, so a stalled body cannot hold the channel past the timeout.
    static func withDeadline<T: Sendable>(
        _ timeout: Duration, _ operation: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        let slot = Mutex<CheckedContinuation<T, any Error>?>(nil)
        let finish: @Sendable (Result<T, any Error>) -> Void = { result in
            slot.withLock { continuation in
                continuation?.resume(with: result)
                continuation = nil
            }
        }
        let work = Mutex<Task<Void, Never>?>(nil)
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                slot.withLock { $0 = continuation }
                let task = Task {
                    do { finish(.success(try await operation())) } catch { finish(.failure(error)) }
                }
                work.withLock { $0 = task }
                Task {
                    try? await Task.sleep(for: timeout)
                    finish(.failure(WebhookDeadline()))
                    task.cancel()
                }
            }
        } onCancel: {
            finish(.failure(CancellationError()))
            work.withLock { $0?.cancel() }
        }
    }
}
