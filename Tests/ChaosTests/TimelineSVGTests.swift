import Chaos
import Foundation
import Testing
#if canImport(FoundationXML)
import FoundationXML
#endif

struct TimelineSVGTests {
    /// Collects what the checks need while proving the document parses as XML.
    final class Collector: NSObject, XMLParserDelegate {
        var lanes: [String] = []
        var segments = 0
        var faults: [String] = []
        var root: String?

        func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                    attributes: [String: String] = [:]) {
            if root == nil { root = name }
            let classes = (attributes["class"] ?? "").split(separator: " ")
            if name == "g", classes.first == "lane", let worker = attributes["data-worker"] { lanes.append(worker) }
            if name == "rect", classes.first == "segment" { segments += 1 }
            if name == "line", classes.first == "fault", classes.count > 1 { faults.append(String(classes[1])) }
        }
    }

    static func parse(_ svg: String) -> (Collector, Bool) {
        let parser = XMLParser(data: Data(svg.utf8))
        let collector = Collector()
        parser.delegate = collector
        return (collector, parser.parse())
    }

    static func attempt(_ consumer: String, _ channel: String, fence: Int64, _ enter: Int64, _ end: Int64,
                        outcome: CommitRecord.Outcome? = .applied, status: HandledRecord.Status = .completed) -> Attempt {
        Attempt(consumer: consumer, channel: channel, entry: "e\(fence)", seq: fence, fence: fence, enterMicros: enter,
                endMicros: end, status: status, outcome: outcome)
    }

    @Test func theTimelineIsWellFormedXMLWithOneLanePerWorker() {
        let attempts = [
            Self.attempt("w0", "ch<1>", fence: 1, 1_000_000, 1_200_000),
            Self.attempt("w1", "ch&2", fence: 2, 1_100_000, 1_900_000, outcome: .lost),
            Self.attempt("w2", "ch\"3", fence: 3, 1_300_000, 1_400_000, outcome: nil, status: .cancelled),
        ]
        let workers = [Timeline.WorkerSpan(name: "w0", startedMicros: 900_000, endedMicros: 1_500_000),
                       .init(name: "w1", startedMicros: 900_000), .init(name: "w2", startedMicros: 1_250_000)]
        let faults = [
            FaultEvent(kind: .kill, atMicros: 1_500_000, worker: "w0", replacement: "w2", detail: "SIGKILL"),
            FaultEvent(kind: .pause, atMicros: 1_150_000, untilMicros: 1_800_000, worker: "w1", detail: "SIGSTOP 650 ms"),
            FaultEvent(kind: .steal, atMicros: 1_350_000, stolen: FenceKey(channel: "ch\"3", fence: 3), detail: "DEL <lock>"),
        ]
        let timeline = Timeline(attempts: attempts, workers: workers, faults: faults)
        let svg = TimelineSVG.render(timeline, title: "chaos & friends")
        let (collector, ok) = Self.parse(svg)
        #expect(ok, "not well-formed XML")
        #expect(collector.root == "svg")
        #expect(collector.lanes == ["w0", "w1", "w2"])
        #expect(collector.segments == 3)
        #expect(collector.faults.sorted() == ["kill", "pause", "steal"])
        #expect(timeline.victim(of: faults[2]) == "w2")
    }

    @Test func consumersSeenOnlyInTheAuditTrailGetTheirOwnLane() {
        let timeline = Timeline(attempts: [Self.attempt("late", "c", fence: 1, 10, 20)], workers: [.init(name: "w0", startedMicros: 0)], faults: [])
        #expect(timeline.lanes.map(\.worker) == ["w0", "late"])
        let (collector, ok) = Self.parse(TimelineSVG.render(timeline, title: "t"))
        #expect(ok)
        #expect(collector.lanes == ["w0", "late"])
    }

    @Test func anEmptyRunStillDrawsAValidPicture() {
        let (collector, ok) = Self.parse(TimelineSVG.render(Timeline(attempts: [], workers: [], faults: []), title: "empty"))
        #expect(ok)
        #expect(collector.lanes.isEmpty)
    }
}
