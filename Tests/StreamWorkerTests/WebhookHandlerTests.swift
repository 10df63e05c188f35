import AsyncHTTPClient
import DistributedLocking
import Foundation
import Logging
import RedisClient
@testable import StreamWorker
import TestSupport
import Testing

/// The http handler against a local HTTP server started by each test, and a real Redis.
@Suite struct WebhookHandlerTests {
    /// One worker ("solo" in group "g") on its own keys, with the http handler pointed at `server`.
    struct Setup {
        let client: RedisClient
        let keys: WorkerKeys
        let stream: String
        var configuration: WorkerConfiguration

        init(lockTTL: Duration = .seconds(2), handlerTimeout: Duration = .seconds(10)) throws {
            client = try TestRedis.client()
            keys = WorkerKeys(prefix: TestRedis.uniqueKey("webhook"))
            stream = keys.prefix + ":in"
            configuration = WorkerConfiguration.defaults
            configuration.partitions = 1
            configuration.streams = [stream]
            configuration.group = "g"
            configuration.consumer = "solo"
            configuration.keyPrefix = keys.prefix
            configuration.lockTTL = lockTTL
            configuration.claimIdle = lockTTL * 2
            configuration.blockTime = .milliseconds(100)
            configuration.handler = .http
            configuration.handlerTimeout = handlerTimeout
        }

        func produce(_ channel: String, _ texts: [String]) async throws -> [String] {
            _ = try? await client.send("XGROUP", "CREATE", stream, "g", "0", "MKSTREAM")
            var ids: [String] = []
            for text in texts {
                ids.append(try await Producer(client: client, keys: keys).send(stream: stream, channel: channel, fields: [StreamField("text", text)]).id)
            }
            return ids
        }

        func state(_ channel: String) async throws -> [String: String] {
            let flat = try await client.send("HGETALL", keys.state(channel: channel)).array?.compactMap(\.string) ?? []
            var state: [String: String] = [:]
            for i in stride(from: 0, to: flat.count - 1, by: 2) { state[flat[i]] = flat[i + 1] }
            return state
        }

        func deadLetters() async throws -> [[String: String]] {
            let entries = try await client.send("XRANGE", WorkerKeys.deadLetters(of: stream), "-", "+").array ?? []
            return entries.map { entry in
                let flat = entry.array?.last?.array?.compactMap(\.string) ?? []
                var record: [String: String] = [:]
                for i in stride(from: 0, to: flat.count - 1, by: 2) { record[flat[i]] = flat[i + 1] }
                return record
            }
        }

        /// Runs a worker with the http handler until `body` returns, then stops it and the HTTP client.
        func withWorker(server: WebhookTestServer, _ body: () async throws -> Void) async throws {
            var configuration = configuration
            configuration.handlerURL = server.url
            let http = HTTPClient(eventLoopGroupProvider: .singleton)
            let handler = WebhookHandler(
                client: http, url: server.url, timeout: configuration.handlerTimeout, defaultListCap: configuration.historyMax)
            let worker = StreamWorker(configuration: configuration, client: client, handler: handler, logger: Logger(label: "test"))
            let running = Task { try await worker.run() }
            let outcome: Result<Void, any Error>
            do {
                try await body()
                outcome = .success(())
            } catch {
                outcome = .failure(error)
            }
            running.cancel()
            _ = await running.result
            try await http.shutdown()
            server.stop()
            client.close()
            try outcome.get()
        }
    }

    @Test func theServiceGetsTheMessageStateFenceAndIdempotencyKeyAndItsAnswerIsCommitted() async throws {
        let setup = try Setup()
        let server = try await WebhookTestServer.start { request, _ in
            let text = (request.json["fields"] as? [String: String])?["text"] ?? "?"
            return .init(body: #"{"set":{"last_text":"\#(text)"},"increment":{"count":1},"append":{"values":["saw \#(text)"],"cap":2}}"#)
        }
        try await setup.withWorker(server: server) {
            let ids = try await setup.produce("room-1", ["a", "b", "c"])
            try await waitUntil { try await setup.state("room-1")["last_seq"] == "3" }

            let received = server.received
            try #require(received.count == 3, "one request per message, none repeated")
            for (i, request) in received.enumerated() {
                let body = request.json
                #expect(body["stream"] as? String == setup.stream)
                #expect(body["channel"] as? String == "room-1")
                #expect(body["id"] as? String == ids[i])
                #expect(body["seq"] as? Int == i + 1)
                #expect(request.headers["idempotency-key"] == "\(setup.stream)/\(ids[i])")
                #expect(request.headers["content-type"] == "application/json")
                let fence = try #require(request.headers["x-sg-fence"].flatMap { Int64($0) })
                #expect(fence > 0)
                #expect((body["fence"] as? Int).map(Int64.init) == fence)
                // The handler sees the state as the previous message's commit left it.
                let state = body["state"] as? [String: String] ?? [:]
                #expect(state["count"] == (i == 0 ? nil : String(i)))
                #expect(state["last_text"] == (i == 0 ? nil : ["a", "b"][i - 1]))
            }
            let state = try await setup.state("room-1")
            #expect(state["count"] == "3" && state["last_text"] == "c" && state["last_id"] == ids[2])
            #expect(state["fence"] == received[2].headers["x-sg-fence"])
            let history = try await setup.client.send("LRANGE", setup.keys.history(channel: "room-1"), 0, -1).array?.compactMap(\.string)
            #expect(history == ["saw b", "saw c"])
            #expect(try await setup.client.send("XPENDING", setup.stream, "g").array?.first?.int == 0)
        }
    }

    @Test func aServerErrorIsRetriedAndTheNextAnswerIsAppliedOnce() async throws {
        let setup = try Setup()
        let server = try await WebhookTestServer.start { _, attempt in
            attempt == 1 ? .init(status: 500, body: "overloaded") : .init(body: #"{"increment":{"count":1}}"#)
        }
        try await setup.withWorker(server: server) {
            let ids = try await setup.produce("c", ["x"])
            try await waitUntil { try await setup.state("c")["last_seq"] == "1" }
            #expect(try await setup.state("c")["count"] == "1")
            let keys = server.received.map { $0.headers["idempotency-key"] }
            #expect(keys == ["\(setup.stream)/\(ids[0])", "\(setup.stream)/\(ids[0])"], "the retry carries the same key")
            #expect(try await setup.deadLetters().isEmpty)
        }
    }

    enum Failure: String, CaseIterable { case status, timeout, invalidUpdate }

    @Test(arguments: Failure.allCases)
    func aServiceThatKeepsFailingEndsDeadLetteredAfterMaxDeliveries(failure: Failure) async throws {
        var setup = try Setup(lockTTL: .milliseconds(500), handlerTimeout: .milliseconds(300))
        setup.configuration.maxDeliveries = 2
        let server = try await WebhookTestServer.start { _, _ in
            switch failure {
            case .status: return .init(status: 503, body: "down")
            case .timeout: return .init(body: "{}", delay: .seconds(2))
            case .invalidUpdate: return .init(body: #"{"set":{"last_seq":"99"}}"#)
            }
        }
        try await setup.withWorker(server: server) {
            _ = try await setup.produce("c", ["doomed"])
            try await waitUntil(timeout: .seconds(60)) { try await !setup.deadLetters().isEmpty }
            let dead = try await setup.deadLetters()
            #expect(dead.count == 1)
            #expect(dead.first?["reason"] == "max_deliveries")
            #expect(dead.first?["f:text"] == "doomed")
            let state = try await setup.state("c")
            #expect(state["count"] == nil, "nothing from a failed call is applied")
            #expect(state["last_seq"] == "1", "dead-lettering moves the channel on")
            // Three attempts per delivery, and at least the deliveries before the dead letter.
            #expect(server.received.count >= 3 * 2)
        }
    }

    @Test func aRequestOutlastingTheLockTTLStillCommitsBecauseTheLeaseIsRenewed() async throws {
        // Renewals every ~0.67 s of a 2 s lease; the call lasts 3.5 leases, so only renewal keeps it.
        var setup = try Setup(lockTTL: .seconds(2), handlerTimeout: .seconds(30))
        setup.configuration.maxDeliveries = 1
        let server = try await WebhookTestServer.start { _, _ in
            .init(body: #"{"increment":{"count":1}}"#, delay: .seconds(7))
        }
        try await setup.withWorker(server: server) {
            _ = try await setup.produce("slow", ["think hard"])
            try await waitUntil(timeout: .seconds(60)) { try await setup.state("slow")["last_seq"] == "1" }
            let state = try await setup.state("slow")
            #expect(state["count"] == "1", "applied, not dead-lettered or skipped")
            #expect(server.received.count == 1, "the lease held through the call, so it was not retried")
            #expect(state["fence"] == server.received.first?.headers["x-sg-fence"])
            #expect(try await setup.deadLetters().isEmpty)
        }
    }

    @Test func theDeadlineHoldsEvenWhenTheExchangeIgnoresCancellation() async throws {
        // Like a body that stalls after the headers: the work does not stop when cancelled.
        await #expect(throws: WebhookDeadline.self) {
            try await WebhookHandler.withDeadline(.milliseconds(200)) {
                await Task.detached { try? await Task.sleep(for: .seconds(60)) }.value
                return 1
            }
        }
    }

    @Test func aWorkerProcessWithTheHTTPHandlerCommitsAndExitsCleanlyOnSIGTERM() async throws {
        let setup = try Setup()
        defer { setup.client.close() }
        let server = try await WebhookTestServer.start { _, _ in .init(body: #"{"increment":{"count":1}}"#) }
        defer { server.stop() }
        _ = try await setup.produce("p", ["one", "two"])
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("sg-webhook-\(UUID().uuidString.prefix(8)).log").path
        let worker = try ChildProcess(builtProductPath("stream-consumer"), [
            "--redis-url", try TestRedis.url(), "--stream", setup.stream, "--group", "g", "--consumer", "proc",
            "--key-prefix", setup.keys.prefix, "--partitions", "1", "--block-ms", "100",
            "--handler", "http", "--handler-url", server.url, "--handler-timeout", "5",
        ], stdout: log)
        defer { worker.killNow() }
        try await waitUntil(timeout: .seconds(60)) { try await setup.state("p")["last_seq"] == "2" }
        #expect(try await setup.state("p")["count"] == "2")
        #expect(server.received.count == 2)
        worker.signal(SIGTERM)
        #expect(await worker.wait(timeout: .seconds(60)) == 0, "the HTTP client is shut down and the process exits 0")
    }

    @Test func errorsNameTheStatusTimeoutOrReasonWithoutCredentials() async throws {
        let server = try await WebhookTestServer.start { request, _ in
            switch (request.json["fields"] as? [String: String])?["case"] {
            case "status": return .init(status: 422, body: "no such model")
            case "slow": return .init(body: "{}", delay: .seconds(6))
            default: return .init(body: #"{"increment":{"fence":1}}"#)
            }
        }
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        let url = "http://user:s3cret@127.0.0.1:\(server.port)/hook"
        // A generous timeout where the answer is immediate (the machine may be slow), a short one
        // only for the request whose answer takes far longer.
        func failure(_ name: String, timeout: Duration = .seconds(30)) async -> WebhookError? {
            let handler = WebhookHandler(client: http, url: url, timeout: timeout, defaultListCap: 10)
            let message = InboundMessage.testMessage(fields: [StreamField("case", name)])
            do {
                _ = try await handler.handle(message, state: ChannelState())
                Issue.record("\(name): expected a failure")
                return nil
            } catch let error as WebhookError {
                return error
            } catch {
                Issue.record("\(name): unexpected \(error)")
                return nil
            }
        }
        let status = await failure("status")
        let slow = await failure("slow", timeout: .seconds(1))
        let invalid = await failure("invalid")
        try await http.shutdown()
        server.stop()

        guard case .status(_, 422, let body)? = status else { Issue.record("got \(String(describing: status))"); return }
        #expect(body == "no such model")
        guard case .timeout? = slow else { Issue.record("got \(String(describing: slow))"); return }
        #expect(invalid.map { "\($0)" }?.contains("'fence' is managed by the store") == true)
        for error in [status, slow, invalid] {
            #expect(error.map { "\($0)" }?.contains("s3cret") == false)
        }
    }
}

extension InboundMessage {
    static func testMessage(fields: [StreamField]) -> InboundMessage {
        let entry = StreamEntry(stream: "s", id: "1-0", fields: [StreamField("channel_id", "c")] + fields)
        guard case .success(let message) = InboundMessage.parse(entry, channelField: "channel_id", maxEntryBytes: 1 << 16) else {
            preconditionFailure("test message must be valid")
        }
        return message
    }
}
