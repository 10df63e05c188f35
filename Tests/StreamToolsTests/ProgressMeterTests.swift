import StreamTools
import Testing

@Suite struct ProgressMeterTests {
    @Test func theBarShowsCountPercentageRateAndETA() {
        let meter = ProgressMeter(label: "import", total: 1000, style: .bar(width: 10))
        let text = meter.render(done: 250, elapsed: .seconds(5))
        #expect(text.hasPrefix("\rimport [##--------] 250/1000 25% 50/s ETA 0:15"))
    }

    @Test func theBarIsRedrawnAtMostOncePerInterval() {
        var meter = ProgressMeter(label: "x", total: 10, style: .bar(width: 4), interval: .milliseconds(200))
        #expect(meter.update(done: 1, elapsed: .milliseconds(10)) != nil)
        #expect(meter.update(done: 2, elapsed: .milliseconds(100)) == nil)
        #expect(meter.update(done: 3, elapsed: .milliseconds(300)) != nil)
        #expect(meter.finish(done: 10, elapsed: .seconds(1))?.hasSuffix("in 0:01\n") == true)
    }

    @Test func plainLinesWaitAFullIntervalAndAShortRunStaysQuiet() {
        var meter = ProgressMeter(label: "export", total: nil, style: .lines, interval: .seconds(5))
        #expect(meter.update(done: 100, elapsed: .seconds(1)) == nil)
        #expect(meter.finish(done: 200, elapsed: .seconds(2)) == nil)
        #expect(meter.update(done: 5000, elapsed: .seconds(5)) == "export: 5000 entries, 1000/s\n")
        #expect(meter.update(done: 6000, elapsed: .seconds(6)) == nil)
        #expect(meter.finish(done: 12000, elapsed: .seconds(12)) == "export: 12000 entries, 1000/s, done in 0:12\n")
    }

    @Test func linesWithATotalCarryAnETA() {
        let meter = ProgressMeter(label: "copy", total: 20_000, style: .lines)
        #expect(meter.render(done: 15_000, elapsed: .seconds(1)) == "copy: 15000/20000 entries, 15.0k/s, ETA 0:00\n")
        #expect(meter.render(done: 1000, elapsed: .seconds(10)) == "copy: 1000/20000 entries, 100/s, ETA 3:10\n")
    }

    @Test func durationsAndRatesReadNaturally() {
        #expect(ProgressMeter.formatDuration(7) == "0:07")
        #expect(ProgressMeter.formatDuration(3725) == "1:02:05")
        #expect(ProgressMeter.formatRate(2_500_000) == "2.5M")
        #expect(GroupReport.formatMilliseconds(850) == "850 ms")
        #expect(GroupReport.formatMilliseconds(12_340) == "12.3 s")
        #expect(GroupReport.formatMilliseconds(245_000) == "4m05s")
        #expect(GroupReport.formatMilliseconds(3 * 86_400_000 + 4 * 3_600_000) == "3d4h")
    }
}
