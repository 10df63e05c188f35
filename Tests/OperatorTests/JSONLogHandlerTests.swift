import Foundation
import JSONLogging
import Logging
import StreamWorker
import Synchronization
import Testing

/// Collects what a handler writes.
final class CapturedLines: Sendable {
    private let lines = Mutex<[String]>([])
    var output: JSONLogOutput { JSONLogOutput { line in self.lines.withLock { $0.append(line) } } }
    var all: [String] { lines.withLock { $0 } }

    /// Each line parsed as a JSON object; fails the test for a line that is not one.
    func objects(sourceLocation: SourceLocation = #_sourceLocation) -> [[String: Any]] {
        all.compactMap { line in
            let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            if object == nil { Issue.record("not a JSON object: \(line)", sourceLocation: sourceLocation) }
            return object
        }
    }
}

@Suite struct JSONLogHandlerTests {
    func logger(_ captured: CapturedLines, level: Logger.Level = .info, provider: Logger.MetadataProvider? = nil) -> Logger {
        Logger(label: "test.label") { label in
            JSONLogHandler(label: label, level: level, metadataProvider: provider, output: captured.output)
        }
    }

    @Test func eachRecordIsOneJSONObjectOnOneLine() throws {
        let captured = CapturedLines()
        logger(captured).info("hello")
        let lines = captured.all
        #expect(lines.count == 1)
        #expect(lines[0].hasSuffix("}\n"))
        #expect(lines[0].dropLast().contains("\n") == false)
        let object = try #require(captured.objects().first)
        #expect(object["message"] as? String == "hello")
        #expect(object["level"] as? String == "info")
        #expect(object["label"] as? String == "test.label")
        let timestamp = try #require(object["timestamp"] as? String)
        #expect(timestamp.count == "2026-01-31T23:59:59.123Z".count && timestamp.hasSuffix("Z"))
    }

    @Test func messagesWithQuotesBackslashesAndControlCharactersStayOneParsableLine() throws {
        let captured = CapturedLines()
        let nasty = "say \"hi\"\\ then\nnew line\r\ttab \u{01}\u{1F}\u{7F} and \u{2028} é 😀"
        logger(captured).warning("\(nasty)", metadata: ["field": .string(nasty)])
        let line = try #require(captured.all.first)
        #expect(line.filter { $0 == "\n" }.count == 1, "only the terminating newline")
        #expect(!line.unicodeScalars.contains { $0.value < 0x20 && $0 != "\n" })
        let object = try #require(captured.objects().first)
        #expect(object["message"] as? String == nasty)
        #expect(object["field"] as? String == nasty)
    }

    @Test func metadataIsMergedIntoTheObjectWithTheCallWinning() throws {
        let captured = CapturedLines()
        let provider = Logger.MetadataProvider { ["trace": "t-1", "shared": "provider"] }
        var log = logger(captured, provider: provider)
        log[metadataKey: "consumer"] = "worker-1"
        log[metadataKey: "shared"] = "handler"
        log.info("processed", metadata: ["channel": "ch:7", "entry": "1-0", "shared": "call"])
        let object = try #require(captured.objects().first)
        #expect(object["consumer"] as? String == "worker-1")
        #expect(object["channel"] as? String == "ch:7")
        #expect(object["entry"] as? String == "1-0")
        #expect(object["trace"] as? String == "t-1")
        #expect(object["shared"] as? String == "call")
    }

    @Test func metadataCannotOverwriteTheFixedFields() throws {
        let captured = CapturedLines()
        logger(captured).error("real", metadata: ["message": "forged", "level": "trace"])
        let object = try #require(captured.objects().first)
        #expect(object["message"] as? String == "real")
        #expect(object["level"] as? String == "error")
        #expect(object["metadata.message"] as? String == "forged")
        #expect(object["metadata.level"] as? String == "trace")
    }

    @Test func nestedMetadataBecomesJSONArraysAndObjects() throws {
        let captured = CapturedLines()
        logger(captured).info("nested", metadata: [
            "list": ["a", "b\"c"],
            "map": ["k": "v", "n": .stringConvertible(42)],
            "count": .stringConvertible(7),
        ])
        let object = try #require(captured.objects().first)
        #expect(object["list"] as? [String] == ["a", "b\"c"])
        let map = try #require(object["map"] as? [String: Any])
        #expect(map["k"] as? String == "v" && map["n"] as? Int == 42)
        #expect(object["count"] as? Int == 7)
    }

    @Test func numbersAndBooleansStayTypedAndStringsStayStrings() throws {
        let captured = CapturedLines()
        logger(captured).info("typed", metadata: [
            "int": .stringConvertible(-3), "unsigned": .stringConvertible(UInt64.max), "double": .stringConvertible(2.5),
            "flag": .stringConvertible(true), "text": "42", "nan": .stringConvertible(Double.nan),
        ])
        let line = try #require(captured.all.first)
        #expect(line.contains("\"int\":-3") && line.contains("\"unsigned\":18446744073709551615"))
        #expect(line.contains("\"double\":2.5") && line.contains("\"flag\":true"))
        #expect(line.contains("\"text\":\"42\""), "a string that looks like a number stays a string")
        #expect(line.contains("\"nan\":\"nan\""), "JSON has no NaN literal")
        let object = try #require(captured.objects().first)
        #expect(object["flag"] as? Bool == true && object["int"] as? Int == -3)
    }

    @Test func recordsBelowTheLevelAreDropped() {
        let captured = CapturedLines()
        let log = logger(captured, level: .warning)
        log.debug("no")
        log.info("no")
        log.warning("yes")
        #expect(captured.all.count == 1)
    }

    @Test func equalRecordsGiveEqualLinesWithSortedKeys() {
        let a = JSONLogLine.format(timestamp: "t", level: .info, label: "l", message: "m", metadata: ["b": "2", "a": "1"])
        #expect(a == "{\"timestamp\":\"t\",\"level\":\"info\",\"label\":\"l\",\"message\":\"m\",\"a\":\"1\",\"b\":\"2\"}\n")
    }

    @Test func timestampsAreUTCWithMilliseconds() {
        #expect(JSONLogLine.timestamp(seconds: 0, milliseconds: 5) == "1970-01-01T00:00:00.005Z")
        #expect(JSONLogLine.timestamp(seconds: 1_798_761_599, milliseconds: 999) == "2026-12-31T23:59:59.999Z")
    }
}

/// The worker's start-up line in JSON: the configuration as one nested object with typed values.
@Suite struct StartupConfigurationLogTests {
    @Test func theConfigurationIsANestedTypedObjectWithThePasswordMasked() throws {
        let configuration = try WorkerConfiguration.load(
            flags: ["lock-ttl": "2.5", "concurrency": "16", "stream": "a,b", "metrics-port": "9100"],
            environment: ["SG_REDIS_URL": "redis://sg-worker:hunter2@127.0.0.1:6379"], yaml: nil)
        let line = JSONLogLine.format(timestamp: "t", level: .info, label: "stream-consumer", message: "Starting",
                                      metadata: ["configuration": .dictionary(configuration.redactedMetadata)])
        #expect(!line.contains("hunter2"), "\(line)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        let logged = try #require(object["configuration"] as? [String: Any])
        #expect((logged["lock"] as? [String: Any])?["ttl"] as? Double == 2.5)
        #expect((logged["processing"] as? [String: Any])?["concurrency"] as? Int == 16)
        #expect((logged["read"] as? [String: Any])?["block-ms"] as? Int == 1000)
        #expect(logged["stream"] as? [String] == ["a", "b"])
        #expect((logged["metrics"] as? [String: Any])?["port"] as? Int == 9100)
        let redis = try #require(logged["redis"] as? [String: Any])
        #expect(["***", "(none)"].contains(redis["password"] as? String))
        #expect((redis["url"] as? String)?.contains("***") == true)
    }
}
