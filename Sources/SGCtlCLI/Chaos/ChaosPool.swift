import Chaos
import Foundation

/// The worker processes of a chaos run: who is alive, who is paused, and each one's life span
/// for the timeline. Workers are named `w0`, `w1`, …; a replacement gets the next free name.
actor ChaosPool {
    private struct Member {
        var name: String
        var process: ChildProcess
        var startedMicros: Int64
        var endedMicros: Int64?
        var paused = false
        /// Exit seen by ``reapUnexpectedExits()``: the worker died without chaos killing it.
        var exitStatus: Int32?
    }

    private let launcher: ConsumerLauncher
    private var members: [Member] = []

    init(launcher: ConsumerLauncher) {
        self.launcher = launcher
    }

    @discardableResult
    func startWorker() throws -> String {
        let name = "w\(members.count)"
        let process = try launcher.start(name)
        members.append(Member(name: name, process: process, startedMicros: wallMicros()))
        return name
    }

    /// Workers that are running and not paused.
    func live() -> [String] {
        members.filter { $0.endedMicros == nil && !$0.paused }.map(\.name)
    }

    /// SIGKILL; returns when the process is gone (reaping a SIGKILLed child, even a stopped one, is immediate).
    func kill(_ name: String) {
        guard let i = members.firstIndex(where: { $0.name == name }) else { return }
        members[i].process.killNow()
        members[i].endedMicros = wallMicros()
    }

    /// SIGTERM one worker and wait for it to drain; its exit status, or nil when it outlived `grace` (then SIGKILLed).
    func stop(_ name: String, grace: Duration) async -> Int32? {
        guard let i = members.firstIndex(where: { $0.name == name }), members[i].endedMicros == nil else { return nil }
        members[i].process.signal(SIGTERM)
        let status = await members[i].process.wait(timeout: grace)
        if status == nil { members[i].process.killNow() }
        members[i].endedMicros = wallMicros()
        members[i].exitStatus = status
        return status
    }

    func pause(_ name: String) {
        guard let i = members.firstIndex(where: { $0.name == name }), members[i].endedMicros == nil else { return }
        members[i].process.signal(SIGSTOP)
        members[i].paused = true
    }

    func resume(_ name: String) {
        guard let i = members.firstIndex(where: { $0.name == name }) else { return }
        members[i].process.signal(SIGCONT)
        members[i].paused = false
    }

    /// Workers that exited although nobody killed them, each reported once.
    func reapUnexpectedExits() async -> [String] {
        var found: [String] = []
        for i in members.indices where members[i].endedMicros == nil {
            if let status = await members[i].process.wait(timeout: .zero) {
                members[i].endedMicros = wallMicros()
                members[i].exitStatus = status
                found.append("worker \(members[i].name) exited on its own with status \(status)")
            }
        }
        return found
    }

    /// SIGTERM to everyone alive (paused ones are resumed first), then SIGKILL whoever outlives `grace`.
    /// Returns workers that did not exit 0.
    func stopAll(grace: Duration) async -> [String] {
        var problems: [String] = []
        for i in members.indices where members[i].endedMicros == nil {
            if members[i].paused { members[i].process.signal(SIGCONT) }
            members[i].process.signal(SIGTERM)
        }
        for i in members.indices where members[i].endedMicros == nil {
            let status = await members[i].process.wait(timeout: grace)
            if status == nil { members[i].process.killNow() }
            if status != 0 { problems.append("worker \(members[i].name) did not shut down cleanly (status \(status.map(String.init) ?? "timeout"))") }
            members[i].endedMicros = wallMicros()
        }
        return problems
    }

    func spans() -> [Timeline.WorkerSpan] {
        members.map { Timeline.WorkerSpan(name: $0.name, startedMicros: $0.startedMicros, endedMicros: $0.endedMicros) }
    }
}

/// Wall-clock microseconds, the clock the workers' audit trail uses.
func wallMicros() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1_000_000 + Int64(ts.tv_nsec) / 1000
}

/// SplitMix64: a seeded generator, so `--seed` replays the same victim choices.
struct SeededRandom: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
