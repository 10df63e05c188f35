import Foundation
import Testing
#if canImport(FoundationXML)
import FoundationXML
#endif

@testable import Chaos

struct TimelineSVGTests {
    /// Collects what the checks need while proving the document parses as XML.
    final class Collector: NSObject, XMLParserDelegate {
        var lanes: [String] = []
        var segments = 0
        var faults: [String] = []
        var root: String?
        /// Each fault label's x, y and text.
        var labels: [(x: Double, y: Double, text: String)] = []
        var keyTexts: [String] = []
        /// Each ownership bar's lane (worker) and title.
        var partitionBars: [(lane: String, title: String)] = []
        private var currentLane = ""
        private var inPartitionBar = false
        private var inLabel: (x: Double, y: Double)?
        private var labelText = ""
        private var keyDepth = 0
        private var inKeyText = false

        func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                    attributes: [String: String] = [:]) {
            if root == nil { root = name }
            let classes = (attributes["class"] ?? "").split(separator: " ")
            if name == "g", classes.first == "lane", let worker = attributes["data-worker"] { lanes.append(worker); currentLane = worker }
            if name == "rect", classes.first == "partition" { inPartitionBar = true; partitionBars.append((currentLane, "")) }
            if name == "rect", classes.first == "segment" { segments += 1 }
            if name == "line", classes.first == "fault", classes.count > 1 { faults.append(String(classes[1])) }
            if name == "text", classes.first == "fault-label" {
                inLabel = (Double(attributes["x"] ?? "") ?? .nan, Double(attributes["y"] ?? "") ?? .nan)
                labelText = ""
            }
            if name == "g", classes.first == "key" { keyDepth = 1 } else if name == "g", keyDepth > 0 { keyDepth += 1 }
            if name == "text", keyDepth > 0 { inKeyText = true; keyTexts.append("") }
            if name == "title" { inLabel.map { labels.append(($0.x, $0.y, labelText)) }; inLabel = nil }
        }

        func parser(_ parser: XMLParser, foundCharacters string: String) {
            if inPartitionBar { partitionBars[partitionBars.count - 1].title += string }
            if inLabel != nil { labelText += string }
            if inKeyText { keyTexts[keyTexts.count - 1] += string }
        }

        func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
            if name == "text" { inKeyText = false }
            if name == "rect" { inPartitionBar = false }
            if name == "g", keyDepth > 0 { keyDepth -= 1 }
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

    static func rgb(_ text: String) -> (Double, Double, Double)? {
        guard let match = text.firstMatch(of: /rgb\((\d+),(\d+),(\d+)\)/) else { return nil }
        return (Double(match.1)!, Double(match.2)!, Double(match.3)!)
    }

    @Test func theTimelineIsWellFormedXMLAndAReplacementContinuesTheLaneOfTheWorkerItReplaced() {
        let attempts = [
            Self.attempt("w0", "ch<1>", fence: 1, 1_000_000, 1_200_000),
            Self.attempt("w1", "ch&2", fence: 2, 1_100_000, 1_900_000, outcome: .lost),
            Self.attempt("w2", "ch\"3", fence: 3, 1_600_000, 1_700_000, outcome: nil, status: .cancelled),
        ]
        let workers = [Timeline.WorkerSpan(name: "w0", startedMicros: 900_000, endedMicros: 1_500_000),
                       .init(name: "w1", startedMicros: 900_000), .init(name: "w2", startedMicros: 1_550_000)]
        let faults = [
            FaultEvent(kind: .kill, atMicros: 1_500_000, worker: "w0", replacement: "w2", detail: "SIGKILL"),
            FaultEvent(kind: .pause, atMicros: 1_150_000, untilMicros: 1_800_000, worker: "w1", detail: "SIGSTOP 650 ms"),
            FaultEvent(kind: .steal, atMicros: 1_650_000, stolen: FenceKey(channel: "ch\"3", fence: 3), detail: "DEL <lock>"),
        ]
        let timeline = Timeline(attempts: attempts, workers: workers, faults: faults)
        #expect(timeline.lanes.map(\.workers) == [["w0", "w2"], ["w1"]])
        #expect(timeline.processCount == 3)
        #expect(timeline.lanes[0].segments.map(\.channel) == ["ch<1>", "ch\"3"])
        #expect(timeline.victim(of: faults[2]) == "w2")
        #expect(timeline.laneIndex(of: "w2") == 0)

        let svg = TimelineSVG.render(timeline, title: "chaos & friends")
        let (collector, ok) = Self.parse(svg)
        #expect(ok, "not well-formed XML")
        #expect(collector.root == "svg")
        #expect(collector.lanes == ["w0", "w1"])
        #expect(svg.contains("w0 → w2"), "the lane names both of its processes")
        #expect(collector.segments == 3)
        #expect(collector.faults.sorted() == ["kill", "pause", "steal"])
    }

    @Test func ownershipSpansFollowTheSamplesAndAreDrawnInTheirHoldersLane() {
        func sample(_ at: Int64, _ owners: [String?]) -> PartitionOwnershipTrail.Sample { .init(atMicros: at, owners: owners) }
        let trail = PartitionOwnershipTrail(partitions: 2, samples: [
            sample(1_000_000, ["w0", nil]),
            sample(1_100_000, ["w0", "w0"]),
            sample(1_200_000, [nil, "w0"]),
            sample(1_300_000, ["w1", "w0"]),
            sample(1_400_000, ["w1", "w1"]),
        ])
        #expect(trail.spans == [
            .init(partition: 0, owner: "w0", startMicros: 1_000_000, endMicros: 1_200_000),
            .init(partition: 0, owner: "w1", startMicros: 1_300_000, endMicros: 1_400_000),
            .init(partition: 1, owner: "w0", startMicros: 1_100_000, endMicros: 1_400_000),
            .init(partition: 1, owner: "w1", startMicros: 1_400_000, endMicros: 1_400_000),
        ])
        #expect(trail.handovers == 2)
        #expect(trail.longestGapMicros == 100_000, "partition 0 had no holder from 1.2 s to 1.3 s")

        let workers = [Timeline.WorkerSpan(name: "w0", startedMicros: 900_000), .init(name: "w1", startedMicros: 1_250_000)]
        let timeline = Timeline(attempts: [Self.attempt("w0", "a", fence: 1, 1_000_000, 1_100_000)], workers: workers, faults: [],
                                ownership: trail)
        let (collector, ok) = Self.parse(TimelineSVG.render(timeline, title: "partitions"))
        #expect(ok, "not well-formed XML")
        #expect(collector.partitionBars.count == 4)
        #expect(collector.partitionBars.filter { $0.lane == "w0" }.map(\.title).allSatisfy { $0.contains("w0") })
        #expect(collector.partitionBars.filter { $0.lane == "w1" }.count == 2)
    }

    @Test func faultLabelsNeverOverlapEvenWhenFaultsAreMillisecondsApart() {
        // A steal and a pause 10 ms apart used to print over each other as "steale".
        var faults = [
            FaultEvent(kind: .steal, atMicros: 5_000_000, stolen: FenceKey(channel: "c", fence: 1), detail: "DEL"),
            FaultEvent(kind: .pause, atMicros: 5_010_000, untilMicros: 7_000_000, worker: "w0", detail: "SIGSTOP"),
        ]
        // And a burst at the right edge, where labels are pulled back inside the picture.
        for i in 0..<6 { faults.append(FaultEvent(kind: .connkill, atMicros: 19_990_000 + Int64(i) * 1000, worker: "w1", detail: "x")) }
        let timeline = Timeline(attempts: [Self.attempt("w0", "c", fence: 1, 4_000_000, 6_000_000)],
                                workers: [.init(name: "w0", startedMicros: 0), .init(name: "w1", startedMicros: 0)],
                                faults: faults, startMicros: 0, endMicros: 20_000_000)
        let (collector, ok) = Self.parse(TimelineSVG.render(timeline, title: "t"))
        #expect(ok)
        #expect(collector.labels.count == faults.count)
        for (i, a) in collector.labels.enumerated() {
            let aWidth = Double(a.text.count) * TimelineSVG.labelCharWidth
            #expect(a.x >= 0 && a.x + aWidth <= TimelineSVG.width, "\(a.text) leaves the picture at \(a.x)")
            for b in collector.labels[(i + 1)...] where a.y == b.y {
                let bWidth = Double(b.text.count) * TimelineSVG.labelCharWidth
                #expect(a.x + aWidth <= b.x || b.x + bWidth <= a.x, "\(a.text) at \(a.x) and \(b.text) at \(b.x) overlap on row \(a.y)")
            }
        }
    }

    @Test func labelRowsPutEachBoxWhereItClearsTheOnesBefore() {
        let rows = TimelineSVG.labelRows([(0, 30), (10, 30), (20, 30), (40, 10), (75, 5)], gap: 4)
        #expect(rows == [0, 1, 2, 0, 0])
    }

    @Test func faultColoursAreFarFromEveryChannelColour() throws {
        for kind in FaultKind.allCases {
            let fault = try #require(Self.rgb(TimelineSVG.faultColour(kind)))
            for channel in TimelineSVG.palette {
                let c = try #require(Self.rgb(channel))
                let distance = ((fault.0 - c.0) * (fault.0 - c.0) + (fault.1 - c.1) * (fault.1 - c.1) + (fault.2 - c.2) * (fault.2 - c.2)).squareRoot()
                #expect(distance >= 95, "\(kind) \(TimelineSVG.faultColour(kind)) is close to channel colour \(channel)")
            }
        }
    }

    @Test func theKeyNamesEveryFaultKindAndTheChannels() {
        let channels = (0..<14).map { "ch\($0)" }
        let attempts = channels.enumerated().map { Self.attempt("w0", $1, fence: Int64($0 + 1), Int64($0) * 1000, Int64($0) * 1000 + 500) }
        let (collector, ok) = Self.parse(TimelineSVG.render(Timeline(attempts: attempts, workers: [], faults: []), title: "t"))
        #expect(ok)
        for kind in FaultKind.allCases { #expect(collector.keyTexts.contains("fault: \(kind.rawValue)")) }
        for channel in channels.prefix(TimelineSVG.keyedChannels) { #expect(collector.keyTexts.contains(channel)) }
        #expect(collector.keyTexts.contains { $0.hasPrefix("+4 more channels") })
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
