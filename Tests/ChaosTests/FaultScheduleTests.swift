import Chaos
import Testing

struct FaultScheduleTests {
    @Test func ratesRepeatFromTheWarmupAndInterleaveTheKinds() throws {
        let schedule = try FaultSchedule.parse(faults: "kill:4,pause:4", defaultInterval: .seconds(3), warmup: .seconds(2), duration: .seconds(11))
        #expect(schedule.planned == [
            .init(at: .seconds(2), kind: .kill), .init(at: .seconds(4), kind: .pause),
            .init(at: .seconds(6), kind: .kill), .init(at: .seconds(8), kind: .pause),
            .init(at: .seconds(10), kind: .kill),
        ])
        #expect(schedule.kinds == [.kill, .pause])
    }

    @Test func aBareNameUsesTheDefaultIntervalAndExplicitTimesMerge() throws {
        let schedule = try FaultSchedule.parse(faults: "steal", times: "kill@1.5,restart@3", defaultInterval: .seconds(2),
                                               warmup: .seconds(1), duration: .seconds(4))
        #expect(schedule.planned.map(\.kind) == [.steal, .kill, .steal, .restart])
        #expect(schedule.planned.map(\.at) == [.seconds(1), .milliseconds(1500), .seconds(3), .seconds(3)])
    }

    @Test func intervalsThatRoundToNothingOrOverflowAreRefused() {
        for faults in ["kill:0.0001", "kill:1e300"] {
            #expect(throws: FaultScheduleError.self) {
                try FaultSchedule.parse(faults: faults, defaultInterval: .seconds(1), warmup: .zero, duration: .seconds(5))
            }
        }
        #expect(throws: FaultScheduleError.self) {
            try FaultSchedule.parse(faults: "", times: "kill@1e300", defaultInterval: .seconds(1), warmup: .zero, duration: .seconds(5))
        }
    }

    @Test func noneAndEmptyMeanNoFaults() throws {
        #expect(try FaultSchedule.parse(faults: "none", defaultInterval: .seconds(1), warmup: .zero, duration: .seconds(5)).planned.isEmpty)
        #expect(try FaultSchedule.parse(faults: "", defaultInterval: .seconds(1), warmup: .zero, duration: .seconds(5)).planned.isEmpty)
    }

    @Test func badSpecificationsNameTheProblem() {
        func error(_ faults: String, _ times: String = "") -> String? {
            do {
                _ = try FaultSchedule.parse(faults: faults, times: times, defaultInterval: .seconds(1), warmup: .zero, duration: .seconds(5))
                return nil
            } catch {
                return error.description
            }
        }
        #expect(error("explode")?.contains("unknown fault 'explode'") == true)
        #expect(error("kill:0")?.contains("positive") == true)
        #expect(error("kill:soon")?.contains("'soon'") == true)
        #expect(error("kill,kill")?.contains("named twice") == true)
        #expect(error("", "kill")?.contains("name@seconds") == true)
        #expect(error("", "pause@-1")?.contains("non-negative") == true)
    }
}
