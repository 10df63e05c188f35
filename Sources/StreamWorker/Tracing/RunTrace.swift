import Tracing

/// The spans of one run, made only when tracing is on: one per message (a child of the
/// producer's span when the entry carries a `traceparent`), each with `claim`, `handle` and
/// `commit` children. Claims and commits are shared by a run's messages, so every message gets
/// its own child with the shared call's times. A message the sampler left out gets no children
/// (they would be left out too), only its context for the handler to pass on.
struct RunTrace: Sendable {
    let tracer: any Tracer
    /// One per message of the run, in its order.
    let spans: [any Span]

    init(tracer: any Tracer, messages: [InboundMessage], group: String) {
        self.tracer = tracer
        spans = messages.map { message in
            var parent = ServiceContext.topLevel
            let context = Self.traceContext(of: message)
            if !context.isEmpty { tracer.extract(context, into: &parent, using: StreamFieldsExtractor()) }
            let span = tracer.startSpan("process \(message.stream)", context: parent, ofKind: .consumer)
            span.updateAttributes { attributes in
                attributes["messaging.system"] = "redis"
                attributes["messaging.operation.type"] = "process"
                attributes["messaging.destination.name"] = message.stream
                attributes["messaging.consumer.group.name"] = group
                attributes["messaging.message.id"] = message.id
                attributes["sg.channel"] = message.channel
                if let seq = message.seq { attributes["sg.seq"] = seq }
            }
            return span
        }
    }

    static var now: DefaultTracerClock.Instant { DefaultTracerClock.now }

    static let traceparent = Array("traceparent".utf8), tracestate = Array("tracestate".utf8)

    /// The entry's W3C trace context, and nothing else of it: a tracer that cannot parse what
    /// it is given may log the whole carrier. A malformed `traceparent` counts as none.
    static func traceContext(of message: InboundMessage) -> [StreamField] {
        guard let parent = message.fields.first(where: { $0.name == traceparent }),
              TraceParent.isValid(String(decoding: parent.value, as: UTF8.self)) else { return [] }
        return [parent] + message.fields.filter { $0.name == tracestate }.prefix(1)
    }

    /// A shared call that started at `start` and just ended, as a child of each message in `range`.
    func step(_ name: String, messages range: Range<Int>, from start: DefaultTracerClock.Instant,
              outcome: (Int) -> String, fence: Int64? = nil) {
        let end = DefaultTracerClock.now
        for index in range where spans[index].isRecording {
            let child = tracer.startSpan(name, context: spans[index].context, ofKind: .client, at: start)
            child.updateAttributes { attributes in
                attributes["sg.outcome"] = outcome(index)
                if let fence { attributes["sg.fence"] = fence }
            }
            child.end(at: end)
        }
    }

    /// The fence the claim gave the messages from `head` on.
    func claimed(fence: Int64, from head: Int) {
        for span in spans[head...] where span.isRecording { span.attributes["sg.fence"] = fence }
    }

    /// Runs the handler for message `index` in a `handle` span, which is the current context
    /// inside it, so an HTTP handler's request carries it on.
    func handle<T: Sendable>(_ index: Int, fence: Int64, _ body: () async throws -> T) async throws -> T {
        guard spans[index].isRecording else {
            return try await ServiceContext.withValue(spans[index].context) { try await body() }
        }
        return try await tracer.withSpan("handle", context: spans[index].context, ofKind: .internal) { span in
            span.attributes["sg.fence"] = fence
            return try await body()
        }
    }

    /// Ends every message's span: those finished with their outcome, the rest with what they wait for.
    func end(finished: [RunStateMachine.Finish], rest: String) {
        for (index, span) in spans.enumerated() {
            guard span.isRecording else {
                span.end()
                continue
            }
            let outcome: String
            if index < finished.count {
                switch finished[index] {
                case .applied: outcome = "applied"
                case .duplicate: outcome = "duplicate"
                case .skipped: outcome = "skipped"
                case .leftPending(let reason):
                    outcome = "left_pending"
                    span.attributes["sg.reason"] = reason
                    span.setStatus(SpanStatus(code: .error, message: reason))
                }
            } else {
                outcome = rest
            }
            span.attributes["sg.outcome"] = outcome
            span.end()
        }
    }
}

extension CommitOutcome {
    /// The label a commit span carries.
    var traceLabel: String {
        switch self {
        case .applied: "applied"
        case .lost: "lost"
        case .stale: "stale"
        case .duplicate: "duplicate"
        case .skipped: "skipped"
        case .gap: "gap"
        }
    }
}

/// Reads W3C trace context (`traceparent`, `tracestate`) from a stream entry's fields.
struct StreamFieldsExtractor: Extractor {
    func extract(key: String, from carrier: [StreamField]) -> String? {
        let name = Array(key.utf8)
        return carrier.first { $0.name == name }.map { String(decoding: $0.value, as: UTF8.self) }
    }
}

/// Writes trace context as stream entry fields, replacing any the producer passed.
struct StreamFieldsInjector: Injector {
    func inject(_ value: String, forKey key: String, into carrier: inout [StreamField]) {
        let name = Array(key.utf8)
        carrier.removeAll { $0.name == name }
        carrier.append(StreamField(name: name, value: Array(value.utf8)))
    }
}
