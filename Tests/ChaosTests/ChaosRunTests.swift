import Foundation
import TestSupport
import Testing

/// Short `sgctl chaos` runs against the test Redis: the real binary, real worker processes, real faults.
/// Each asserts the run's own verdict (exit status 0) and the invariants in its JSON report.
@Suite(.serialized) struct ChaosRunTests {
    struct Run {
        var status: Int32?
        var output: String
        var report: [String: Any]?

        var invariants: [String: Any] { report?["invariants"] as? [String: Any] ?? [:] }
        func count(_ key: String) -> Int? { (invariants[key] as? NSNumber)?.intValue }
        func injected(_ kind: String) -> Int { ((report?["faults_injected"] as? [String: Any])?[kind] as? NSNumber)?.intValue ?? 0 }
    }

    static func chaos(_ arguments: [String], timeout: Duration = .seconds(180)) async throws -> Run {
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("sg-chaos-test-\(UUID().uuidString.prefix(8)).out").path
        defer { try? FileManager.default.removeItem(atPath: output) }
        let process = try ChildProcess(builtProductPath("sgctl"), ["chaos"] + arguments, stdout: output)
        let status = await process.wait(timeout: timeout)
        if status == nil { process.killNow() }
        let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        let json = text.split(separator: "\n").last { $0.hasPrefix("{") }
        let report = json.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        return Run(status: status, output: text, report: report)
    }

    /// A longer `workMs` keeps workers inside channels most of the time, so a fault finds a holder mid-turn.
    static func common(messages: Int, workMs: Int = 5) throws -> [String] {
        ["--redis-url", try TestRedis.url(), "--json", "--workers", "3", "--messages", String(messages), "--channels", "8",
         "--duration", "6", "--warmup", "1", "--work-ms", String(workMs), "--jitter-ms", "5", "--drain-timeout", "90"]
    }

    /// Exactly once, in order, no overlap the run's policy forbids, no stolen or regressed fence.
    static func expectInvariantsHeld(_ run: Run, messages: Int, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(run.status == 0, "sgctl chaos failed:\n\(run.output)", sourceLocation: sourceLocation)
        #expect(run.report?["ok"] as? Bool == true, sourceLocation: sourceLocation)
        #expect(run.count("messages") == messages, sourceLocation: sourceLocation)
        #expect(run.count("applied") == messages, sourceLocation: sourceLocation)
        for violation in ["duplicates", "lost", "out_of_order", "unresolved_overlaps", "fence_regressions", "stolen_lease_commits"] {
            #expect(run.count(violation) == 0, "\(violation) in:\n\(run.output)", sourceLocation: sourceLocation)
        }
    }

    @Test func killedWorkersAreReplacedAndEveryMessageIsAppliedOnceInOrderWithStrictExclusion() async throws {
        let messages = 480
        let run = try await Self.chaos(Self.common(messages: messages) + ["--faults", "kill:2", "--lock-ttl", "2"])
        Self.expectInvariantsHeld(run, messages: messages)
        #expect(run.injected("kill") >= 2)
        #expect(run.invariants["policy"] as? String == "strict")
        #expect(run.count("overlaps") == 0)
    }

    @Test func pausedHoldersPastTheirTTLNeverGetALateWriteIn() async throws {
        let messages = 240
        let run = try await Self.chaos(Self.common(messages: messages, workMs: 100) + ["--faults", "pause:2.5", "--lock-ttl", "1", "--pause-ms", "2500"])
        Self.expectInvariantsHeld(run, messages: messages)
        #expect(run.injected("pause") >= 2)
        #expect(run.invariants["policy"] as? String == "older_holder_refused")
        // Chaos pauses a worker that is inside a channel, so some holder outlived its lease: its
        // commit was refused or it saw the loss and stopped.
        #expect((run.count("rejected_stale_commits") ?? 0) + (run.count("abandoned_attempts") ?? 0) >= 1, "no stale holder:\n\(run.output)")
    }

    @Test func stolenLocksNeverLetTheRobbedHolderCommit() async throws {
        let messages = 480
        let run = try await Self.chaos(Self.common(messages: messages, workMs: 40) + ["--faults", "steal:0.5", "--lock-ttl", "1"])
        Self.expectInvariantsHeld(run, messages: messages)
        #expect(run.injected("steal") >= 4)
        // Every theft names the lease it took, and some robbed holder tried to commit or saw the theft.
        let faults = run.report?["faults"] as? [[String: Any]] ?? []
        #expect(faults.allSatisfy { $0["stolen"] != nil })
        #expect((run.count("rejected_stale_commits") ?? 0) + (run.count("abandoned_attempts") ?? 0) >= 1, "no robbed holder:\n\(run.output)")
    }

    @Test func anUnknownFaultIsRefusedWithItsName() async throws {
        let run = try await Self.chaos(["--redis-url", try TestRedis.url(), "--faults", "kill,explode"], timeout: .seconds(30))
        #expect(run.status != 0)
        #expect(run.output.contains("unknown fault 'explode'"))
    }

    @Test func restartIsRefusedAgainstARedisChaosDidNotStart() async throws {
        let run = try await Self.chaos(["--redis-url", try TestRedis.url(), "--faults", "restart"], timeout: .seconds(30))
        #expect(run.status != 0)
        #expect(run.output.contains("restart"))
        #expect(run.output.contains("--redis-url"))
    }

    @Test func clusterFaultsAreRefusedWithoutACluster() async throws {
        let run = try await Self.chaos(["--redis-url", try TestRedis.url(), "--faults", "reshard"], timeout: .seconds(30))
        #expect(run.status != 0)
        #expect(run.output.contains("redis+cluster://"))
    }

    /// Failovers and slot moves on a private cluster while workers are killed and paused: every
    /// invariant holds, and the faults really happened.
    @Test func failoversAndSlotMovesOnAClusterKeepEveryInvariant() async throws {
        let cluster = try await PrivateRedisCluster()
        defer { cluster.stop() }
        let messages = 600
        var arguments = try Self.common(messages: messages)
        arguments[1] = cluster.url
        let run = try await Self.chaos(arguments + ["--faults", "failover:2,reshard:2,kill:3", "--lock-ttl", "1"], timeout: .seconds(240))
        if run.status != 0 { Issue.record("the cluster after the run:\n\(await cluster.diagnostics())") }
        Self.expectInvariantsHeld(run, messages: messages)
        #expect(run.injected("failover") >= 1)
        #expect(run.injected("reshard") >= 1)
    }
}
