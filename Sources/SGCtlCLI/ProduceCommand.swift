import ArgumentParser
import Foundation
import Logging
import RedisClient
import StreamWorker

/// Generates a seq-stamped workload, or sends JSONL messages, through the Producer script.
struct ProduceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "produce",
        abstract: "Append seq-stamped messages: N generated over M channels, or JSONL from a file or stdin.",
        discussion: """
            JSONL lines are objects with "channel" (or the --channel-field name) and any other string fields, \
            e.g. {"channel": "42", "text": "hello"}. Each message gets the channel's next seq atomically with its XADD.
            """
    )

    @OptionGroup var redis: RedisOptions
    @Option(help: "Stream to append to (its partition streams, with partitions).") var stream = "sg:stream:inbound"
    @Option(help: "Messages to generate.") var messages = 1000
    @Option(help: "Channels to spread them over (round-robin).") var channels = 10
    @Option(help: "Read JSONL from this file ('-' for stdin) instead of generating.") var jsonl: String?
    @Option(help: "Field holding the channel id.") var channelField = "channel_id"
    @Option(help: "Key prefix.") var keyPrefix = "sg"
    @OptionGroup var layout: PartitionOptions
    @Option(help: "Concurrent producers (pipelined on one connection), with --batch 1.") var parallel = 32
    @Option(help: "Messages per batch: each batch is one script call per partition, and batches go out one after another in input order; 1 sends each message in a call of its own.")
    var batch = 100
    @Option(help: "W3C trace context stamped on every message as its traceparent field, so the worker's spans join that trace (00-<32 hex trace id>-<16 hex span id>-<2 hex flags>).")
    var traceparent: String?
    @Flag(help: ArgumentHelp(jsonHelp)) var json = false

    func validate() throws {
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1, got \(batch)") }
        guard parallel >= 1 else { throw ValidationError("--parallel must be at least 1, got \(parallel)") }
        if let traceparent, !TraceParent.isValid(traceparent) {
            throw ValidationError("--traceparent \(traceparent) is not a W3C traceparent: 00-<32 lower-case hex>-<16 lower-case hex>-<2 hex>, ids not all zeros")
        }
    }

    func run() async throws {
        let client = try await redis.client()
        defer { client.close() }
        let producer = Producer(client: client, keys: try layout.keys(prefix: keyPrefix), channelField: channelField)
        var work: [(String, [StreamField])]
        if let jsonl {
            work = try Self.readJSONL(jsonl, channelField: channelField)
        } else {
            guard channels > 0 else { throw ValidationError("--channels must be positive") }
            work = (0..<messages).map { i in ("ch-\(i % channels)", [StreamField("text", "message \(i)"), StreamField("sent_us", String(Self.nowMicros()))]) }
        }
        if let traceparent {
            work = work.map { channel, fields in (channel, fields.filter { $0.name != Array("traceparent".utf8) } + [StreamField("traceparent", traceparent)]) }
        }
        let start = ContinuousClock.now
        // Per-channel order must follow seq order: batches go out one after another, and one by
        // one, a channel's messages go out in turn while different channels run in parallel.
        var byChannel: [String: [[StreamField]]] = [:]
        var channelOrder: [String] = []
        for (channel, fields) in work {
            if byChannel[channel] == nil { channelOrder.append(channel) }
            byChannel[channel, default: []].append(fields)
        }
        let stream = stream
        if batch > 1 {
            for start in stride(from: 0, to: work.count, by: batch) {
                var pending = work[start..<min(start + batch, work.count)].map { OutgoingMessage(channel: $0.0, fields: $0.1) }
                try await Self.retryingWhileLoading {
                    // Only whole calls fail, and a partition's later calls with them, so what is
                    // sent again keeps each channel's order.
                    let results = await producer.send(pending, stream: stream)
                    let failed = zip(pending, results).filter { if case .failure = $0.1 { true } else { false } }
                    if let (_, result) = failed.first {
                        pending = failed.map(\.0)
                        _ = try result.get()
                    }
                }
            }
        } else {
            try await produceOneByOne(channelOrder, byChannel, producer: producer, stream: stream)
        }
        let elapsed = start.duration(to: .now)
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        if json {
            printJSONLine(["produced": work.count, "channels": byChannel.count, "seconds": seconds])
        } else {
            print("produced \(work.count) messages over \(byChannel.count) channels in \(String(format: "%.2f", seconds)) s")
        }
    }

    /// Each message in a call of its own: a channel's one after another, channels in parallel.
    func produceOneByOne(_ channelOrder: [String], _ byChannel: [String: [[StreamField]]], producer: Producer, stream: String) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            var running = 0
            for channel in channelOrder {
                if running >= parallel { try await group.next(); running -= 1 }
                let items = byChannel[channel]!
                group.addTask {
                    for fields in items {
                        _ = try await Self.retryingWhileLoading { try await producer.send(stream: stream, channel: channel, fields: fields) }
                    }
                }
                running += 1
            }
            try await group.waitForAll()
        }
    }

    static func readJSONL(_ path: String, channelField: String) throws -> [(String, [StreamField])] {
        let data = path == "-" ? FileHandle.standardInput.readDataToEndOfFile() : try Data(contentsOf: URL(fileURLWithPath: path))
        var out: [(String, [StreamField])] = []
        for (n, line) in data.split(separator: UInt8(ascii: "\n")).enumerated() where !line.isEmpty {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any] else {
                throw ValidationError("line \(n + 1): not a JSON object")
            }
            guard let channel = (object["channel"] ?? object[channelField]).map({ "\($0)" }), !channel.isEmpty else {
                throw ValidationError("line \(n + 1): no \"channel\" or \"\(channelField)\" field")
            }
            let fields = object.filter { $0.key != "channel" && $0.key != channelField && $0.key != "seq" }
                .sorted { $0.key < $1.key }
                .map { StreamField($0.key, "\($0.value)") }
            out.append((channel, fields))
        }
        return out
    }

    /// Redis answers LOADING while it reads its data set after a restart, and refuses the command
    /// before running it, so a retry cannot write twice. The state ends by itself: wait (up to a
    /// minute, backing off to 1 s) instead of failing the whole run.
    static func retryingWhileLoading<T>(_ body: () async throws -> T) async throws -> T {
        let deadline = ContinuousClock.now + .seconds(60)
        var pause = Duration.milliseconds(50)
        while true {
            do {
                return try await body()
            } catch let error as RedisError where error.serverCode == "LOADING" && ContinuousClock.now < deadline {
                try await Task.sleep(for: pause)
                pause = min(pause * 2, .seconds(1))
            }
        }
    }

    static func nowMicros() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1_000_000 + Int64(ts.tv_nsec) / 1000
    }
}
