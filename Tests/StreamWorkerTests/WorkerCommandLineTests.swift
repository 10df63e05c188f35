import Foundation
import StreamWorker
import TestSupport
import Testing

/// The stream-consumer binary's own handling of its command line and environment.
@Suite struct WorkerCommandLineTests {
    /// Runs the binary until it exits or `until` appears in its output; returns the status (nil if
    /// still running, then killed) and the output.
    static func run(_ arguments: [String], environment: [String: String] = [:], until: String? = nil) async throws -> (Int32?, String) {
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("sg-cli-\(UUID().uuidString.prefix(8)).log").path
        defer { try? FileManager.default.removeItem(atPath: log) }
        let process = try ChildProcess(builtProductPath("stream-consumer"), arguments, stdout: log, environment: environment)
        defer { process.killNow() }
        var status: Int32?
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            status = await process.wait(timeout: .milliseconds(200))
            let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            if status != nil || until.map(output.contains) == true { return (status, output) }
        }
        return (status, (try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
    }

    /// `--help` names, for every option, the variable that also sets it, and SG_CONFIG for the file.
    @Test func helpNamesEveryOptionsVariableAndItsDefault() async throws {
        let (status, output) = try await Self.run(["--help"])
        #expect(status == 0)
        let text = output.replacing(/\s+/, with: " ")
        let named = Set(text.matches(of: /\[env: (SG_[A-Z_]+)\]/).map { String($0.output.1) })
        let expected = Set(WorkerConfiguration.optionNames.map(WorkerConfiguration.environmentVariable(for:)) + ["SG_CONFIG"])
        #expect(named == expected, "missing \(expected.subtracting(named).sorted()), unknown \(named.subtracting(expected).sorted())")
        #expect(text.contains("(default: 64). [env: SG_CONCURRENCY]"), "\(text)")
    }

    @Test func aNegativeBlockTimeOnTheCommandLineGetsTheRealReason() async throws {
        let (status, output) = try await Self.run(["--block-ms", "-1"])
        #expect(status != nil && status != 0)
        #expect(output.contains("block-ms: \"-1\" is not a whole number of milliseconds >= 0"), "\(output)")
        #expect(!output.contains("Missing value"))
    }

    @Test func aMisspeltVariableIsNamedWithTheOneMeant() async throws {
        // Nothing listens on port 1: the worker keeps retrying, which is all this needs.
        let (status, output) = try await Self.run(
            ["--redis-url", "redis://127.0.0.1:1"], environment: ["SG_LOCK_TLL": "5"], until: "SG_LOCK_TLL")
        #expect(status == nil, "still running: a warning, not an error")
        #expect(output.contains("Unknown environment variable SG_LOCK_TLL is ignored; did you mean SG_LOCK_TTL?"), "\(output)")
    }

    @Test func aLeaseOfATenthOfAMillisecondIsRefusedWithTheReason() async throws {
        let (status, output) = try await Self.run(["--lock-ttl", "0.0001"])
        #expect(status != nil && status != 0)
        #expect(output.contains("lock-ttl: \"0.0001\" is not within 10 ms to 1 day"), "\(output)")
    }
}
