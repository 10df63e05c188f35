import Chaos
import Foundation
import RedisClient
@testable import StreamWorker
import TestSupport
import InMemoryTracing
import Testing
import Tracing

/// Tracing end to end: `sgctl produce --traceparent`, a real worker exporting OTLP/HTTP to a
/// receiver that decodes with opentelemetry-proto, and a webhook that sees the propagated context.
@Suite struct TracingTests {
    struct ExportedSpan {
        var traceID, spanID, parentID, name: String
        var kind: Int
        var attributes: [String: Any]
        func string(_ key: String) -> String? { attributes[key] as? String }
    }

    /// The receiver's output: spans, and the `traceparent` of each webhook request.
    static func read(_ path: String) -> (spans: [ExportedSpan], hooks: [String?]) {
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        var spans: [ExportedSpan] = [], hooks: [String?] = []
        for line in text.split(separator: "\n") {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { continue }
            if let span = object["span"] as? [String: Any] {
                spans.append(ExportedSpan(
                    traceID: span["trace_id"] as? String ?? "", spanID: span["span_id"] as? String ?? "",
                    parentID: span["parent_span_id"] as? String ?? "", name: span["name"] as? String ?? "",
                    kind: span["kind"] as? Int ?? -1, attributes: span["attributes"] as? [String: Any] ?? [:]))
            } else if let hook = object["hook"] as? [String: Any] {
                hooks.append(hook["traceparent"] as? String)
            }
        }
        return (spans, hooks)
    }

    static func randomHex(bytes: Int) -> String {
        (0..<bytes).map { _ in String(format: "%02x", UInt8.random(in: 1...255)) }.joined()
    }

    @Test func aTracedMessagesSpansJoinTheProducersTraceAndTheWebhookCallCarriesThem() async throws {
        let client = try TestRedis.client()
        defer { client.close() }
        let prefix = "t" + UUID().uuidString.prefix(8).lowercased()
        let stream = prefix + ":in"
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sg-trace-\(prefix)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let output = directory.appendingPathComponent("received.jsonl").path
        let portFile = directory.appendingPathComponent("port").path

        let receiver = try ChildProcess(try TestPython.interpreter(), [TestPython.scripts.appendingPathComponent("otlp_receiver.py").path, output, portFile],
                                        stdout: directory.appendingPathComponent("receiver.log").path)
        defer { receiver.killNow() }
        try await waitUntil(timeout: .seconds(60)) { FileManager.default.fileExists(atPath: portFile) }
        let port = try String(contentsOfFile: portFile, encoding: .utf8)

        // Three messages in the producer's trace, then one with no trace context at all.
        let traceID = Self.randomHex(bytes: 16), producerSpan = Self.randomHex(bytes: 8)
        let common = ["produce", "--redis-url", try TestRedis.url(), "--stream", stream, "--key-prefix", prefix,
                      "--partitions", "1", "--channels", "1"]
        for extra in [["--messages", "3", "--traceparent", "00-\(traceID)-\(producerSpan)-01"], ["--messages", "1"]] {
            let produce = try ChildProcess(builtProductPath("sgctl"), common + extra, stdout: directory.appendingPathComponent("produce.log").path)
            #expect(await produce.wait(timeout: .seconds(120)) == 0)
        }
        let rejected = try ChildProcess(builtProductPath("sgctl"), common + ["--messages", "1", "--traceparent", "00-\(traceID)-0000000000000000-01"],
                                        stdout: directory.appendingPathComponent("rejected.log").path)
        #expect(await rejected.wait(timeout: .seconds(120)) != 0, "an all-zero parent id is not a traceparent")

        let worker = try ChildProcess(builtProductPath("stream-consumer"), [
            "--redis-url", try TestRedis.url(), "--stream", stream, "--group", "g", "--consumer", "traced",
            "--key-prefix", prefix, "--partitions", "1", "--block-ms", "100",
            "--handler", "http", "--handler-url", "http://127.0.0.1:\(port)/hook", "--handler-timeout", "30",
        ], stdout: directory.appendingPathComponent("worker.log").path,
           environment: ["OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:\(port)", "OTEL_BSP_SCHEDULE_DELAY": "200"])
        defer { worker.killNow() }
        let keys = WorkerKeys(prefix: prefix, partitions: 1)
        try await waitUntil(timeout: .seconds(120)) {
            try await client.send("HGET", keys.state(channel: "ch-0"), "count").string == "4"
        }
        // Draining flushes the exporter: every span is out once the process has exited.
        worker.signal(SIGTERM)
        #expect(await worker.wait(timeout: .seconds(60)) == 0)

        let (spans, hooks) = Self.read(output)
        let byID = Dictionary(spans.map { ($0.spanID, $0) }, uniquingKeysWith: { first, _ in first })
        let messages = spans.filter { $0.name == "process \(stream)" && $0.string("sg.outcome") == "applied" }
        let entries = try await client.send("XRANGE", stream, "-", "+").array?.compactMap { $0.array?.first?.string } ?? []
        #expect(entries.count == 4)
        #expect(Set(messages.compactMap { $0.string("messaging.message.id") }) == Set(entries), "one applied message span per entry")
        #expect(messages.count == 4)

        for message in messages {
            #expect(message.kind == 5, "a consumer span")  // SPAN_KIND_CONSUMER
            #expect(message.string("sg.channel") == "ch-0")
            #expect((message.attributes["sg.fence"] as? Int ?? 0) > 0, "the fence the message ran under")
            let children = spans.filter { $0.parentID == message.spanID }
            for name in ["claim", "handle", "commit"] {
                #expect(children.contains { $0.name == name && $0.traceID == message.traceID }, "\(message.string("messaging.message.id") ?? "?") has no \(name) child")
            }
            #expect(children.contains { $0.name == "commit" && $0.string("sg.outcome") == "applied" })
        }
        let inProducerTrace = messages.filter { $0.traceID == traceID }
        #expect(inProducerTrace.count == 3, "the traceparent's trace")
        #expect(inProducerTrace.allSatisfy { $0.parentID == producerSpan }, "children of the producer's span")
        let untraced = messages.filter { $0.traceID != traceID }
        #expect(untraced.count == 1 && untraced.allSatisfy { $0.parentID.isEmpty }, "a message without traceparent starts a trace")

        // Each webhook request carries a context whose span is the HTTP client span under a `handle` span.
        #expect(hooks.count >= 4)
        for hook in hooks {
            let parts = try #require(hook?.split(separator: "-").map(String.init), "a webhook request without traceparent")
            try #require(parts.count == 4)
            let request = try #require(byID[parts[2]], "the webhook's parent span \(parts[2]) was not exported")
            #expect(request.traceID == parts[1] && request.kind == 3, "an HTTP client span")  // SPAN_KIND_CLIENT
            #expect(byID[request.parentID]?.name == "handle")
        }
    }
}

/// The trace context's way into entries and out of them, with an in-memory tracer and real Redis.
@Suite struct TraceContextTests {
    static func decode(_ entry: RESPValue, stream: String) throws -> InboundMessage {
        let id = try #require(entry.array?.first?.string)
        let flat = entry.array?.last?.array?.compactMap(\.string) ?? []
        var fields: [StreamField] = []
        for i in stride(from: 0, to: flat.count - 1, by: 2) where flat[i] != "channel_id" && flat[i] != "seq" {
            fields.append(StreamField(flat[i], flat[i + 1]))
        }
        return InboundMessage(stream: stream, id: id, channel: "c", seq: nil, fields: fields)
    }

    static func names(_ message: InboundMessage) -> [String: String] {
        Dictionary(message.fields.map { (String(decoding: $0.name, as: UTF8.self), String(decoding: $0.value, as: UTF8.self)) },
                   uniquingKeysWith: { $1 })
    }

    @Test func aProducerInATracedOperationStampsItsContextInPlaceOfTheCallersTraceFields() async throws {
        let client = try TestRedis.client()
        defer { client.close() }
        let keys = WorkerKeys(prefix: "t" + UUID().uuidString.prefix(8).lowercased(), partitions: 1)
        let stream = keys.prefix + ":in"
        let tracer = InMemoryTracer()
        let producer = Producer(client: client, keys: keys, instrument: tracer)
        let foreign = [StreamField("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
                       StreamField("tracestate", "vendor=1")]

        let (traceID, spanID) = try await tracer.withSpan("send") { span in
            _ = try await producer.send(stream: stream, channel: "c", fields: [StreamField("text", "hi")] + foreign)
            let context = try #require(span.context.inMemorySpanContext)
            return (context.traceID, context.spanID)
        }
        _ = try await producer.send(stream: stream, channel: "c", fields: [StreamField("text", "untraced")] + foreign)

        let entries = try (try await client.send("XRANGE", stream, "-", "+").array ?? []).map { try Self.decode($0, stream: stream) }
        try #require(entries.count == 2)
        let traced = Self.names(entries[0]), untraced = Self.names(entries[1])
        #expect(traced[InMemoryTracer.traceIDKey] == traceID && traced[InMemoryTracer.spanIDKey] == spanID)
        #expect(traced["traceparent"] == nil && traced["tracestate"] == nil, "the caller's trace fields are replaced whole")
        #expect(traced["text"] == "hi")
        #expect(untraced["traceparent"] != nil && untraced["tracestate"] == "vendor=1", "outside a traced operation the fields stay")
        #expect(untraced[InMemoryTracer.traceIDKey] == nil)
    }

    @Test func theTracerReadsOnlyAWellFormedTraceContextNeverThePayload() {
        let tracer = InMemoryTracer()
        let valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        let messages = [
            InboundMessage(stream: "s", id: "1-0", channel: "c", seq: 1,
                           fields: [StreamField("text", "secret"), StreamField("traceparent", valid), StreamField("tracestate", "v=1")]),
            InboundMessage(stream: "s", id: "1-1", channel: "c", seq: 2,
                           fields: [StreamField("text", "secret"), StreamField("traceparent", "00-not-a-context-01")]),
            InboundMessage(stream: "s", id: "1-2", channel: "c", seq: 3, fields: [StreamField("text", "secret")]),
        ]
        let trace = RunTrace(tracer: tracer, messages: messages, group: "g")
        trace.end(finished: [.applied, .applied, .duplicate], rest: "")
        let carriers = tracer.performedContextExtractions.compactMap { $0.carrier as? [StreamField] }
        #expect(carriers.count == 1, "a malformed or missing traceparent is not handed to the tracer")
        #expect(carriers.first.map { $0.map { String(decoding: $0.name, as: UTF8.self) } } == ["traceparent", "tracestate"])
        let spans = tracer.finishedSpans.filter { $0.operationName == "process s" }
        #expect(spans.count == 3)
        #expect(spans.map { $0.attributes["sg.outcome"]?.toSpanAttribute() } == [.string("applied"), .string("applied"), .string("duplicate")])
    }
}
