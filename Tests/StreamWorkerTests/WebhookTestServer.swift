import Foundation
import Hummingbird
import Logging
import Synchronization

/// A local HTTP server for webhook tests: it records every request to `/hook` and answers
/// with what the test's `respond` says for that attempt (1 for the first request, and so on).
final class WebhookTestServer: Sendable {
    struct Received: Sendable {
        /// Header names in lower case.
        var headers: [String: String]
        var body: [UInt8]

        /// The body as a JSON object (empty when it is not one).
        var json: [String: Any] {
            ((try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any]) ?? [:]
        }
    }

    struct Answer: Sendable {
        var status: Int = 200
        var body: String = ""
        /// Time spent before answering.
        var delay: Duration = .zero
    }

    typealias Respond = @Sendable (_ request: Received, _ attempt: Int) -> Answer

    private let recorder: Recorder
    private let task: Task<Void, any Error>
    let port: Int

    var url: String { "http://127.0.0.1:\(port)/hook" }
    var received: [Received] { recorder.requests.withLock { $0 } }

    private init(recorder: Recorder, task: Task<Void, any Error>, port: Int) {
        self.recorder = recorder
        self.task = task
        self.port = port
    }

    static func start(_ respond: @escaping Respond) async throws -> WebhookTestServer {
        let recorder = Recorder()
        let router = Router()
        router.post("hook") { request, _ -> Response in
            let body = try await request.body.collect(upTo: 1 << 20)
            var headers: [String: String] = [:]
            for field in request.headers { headers[field.name.canonicalName] = field.value }
            let received = Received(headers: headers, body: Array(body.readableBytesView))
            let attempt = recorder.requests.withLock { $0.append(received); return $0.count }
            let answer = respond(received, attempt)
            if answer.delay > .zero { try await Task.sleep(for: answer.delay) }
            return Response(
                status: .init(code: answer.status), headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(string: answer.body)))
        }
        let (ports, portContinuation) = AsyncStream<Int>.makeStream()
        let app = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in
                portContinuation.yield(channel.localAddress?.port ?? 0)
                portContinuation.finish()
            },
            logger: Logger(label: "webhook-test-server"))
        let task = Task { try await app.run() }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next(), port > 0 else {
            task.cancel()
            throw WebhookServerDidNotStart()
        }
        return WebhookTestServer(recorder: recorder, task: task, port: port)
    }

    func stop() {
        task.cancel()
    }

    private final class Recorder: Sendable {
        let requests = Mutex<[Received]>([])
    }

    struct WebhookServerDidNotStart: Error {}
}
