import BuildInfo
import Foundation
import TestSupport
import Testing

/// `--version` on the binaries: the release and the commit they were built from.
@Suite struct VersionTests {
    static let repository = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func output(of tool: String, _ arguments: [String]) async throws -> (status: Int32?, text: String) {
        try await output(ofPath: builtProductPath(tool), arguments)
    }

    func output(ofPath path: String, _ arguments: [String]) async throws -> (status: Int32?, text: String) {
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("version-\(UUID().uuidString).log").path
        defer { try? FileManager.default.removeItem(atPath: log) }
        let process = try ChildProcess(path, arguments, stdout: log)
        let status = await process.wait(timeout: .seconds(60))
        if status == nil { process.killNow() }
        return (status, (try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
    }

    @Test(arguments: ["stream-consumer", "sgctl"])
    func theBinaryPrintsItsVersionAndTheCommitItWasBuiltFrom(tool: String) async throws {
        let result = try await output(of: tool, ["--version"])
        #expect(result.status == 0)
        #expect(result.text == "\(BuildInfo.version) (commit \(BuildInfo.commit))\n")
    }

    /// The image's one binary: a link's name picks the command, and so does a first argument.
    @Test(arguments: [("stream-consumer", "Consume Redis Streams"), ("sgctl", "Operator tool")])
    func stargazerRunsTheCommandItIsCalledBy(tool: String, overview: String) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("stargazer-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let link = directory.appendingPathComponent(tool).path
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: builtProductPath("stargazer"))

        for (path, arguments) in [(link, ["--help"]), (builtProductPath("stargazer"), [tool, "--help"])] {
            let result = try await output(ofPath: path, arguments)
            #expect(result.status == 0)
            #expect(result.text.contains("OVERVIEW: \(overview)"), "\(path) \(arguments): \(result.text)")
            #expect(result.text.contains("USAGE: \(tool)"), "\(path) \(arguments): \(result.text)")
        }
        let version = try await output(ofPath: link, ["--version"])
        #expect(version.text == "\(BuildInfo.version) (commit \(BuildInfo.commit))\n")
    }

    @Test func stargazerWithoutACommandSaysHowToCallItAndFails() async throws {
        for arguments in [[], ["verify"]] {
            let result = try await output(of: "stargazer", arguments)
            #expect(result.status == 64)
            #expect(result.text.contains("usage: stargazer sgctl [arguments…]"), "\(arguments): \(result.text)")
        }
        // Asked for, the usage is no error.
        for arguments in [["--help"], ["-h"], ["help"]] {
            let result = try await output(of: "stargazer", arguments)
            #expect(result.status == 0, "\(arguments)")
            #expect(result.text.contains("usage: stargazer sgctl [arguments…]"), "\(arguments): \(result.text)")
        }
    }

    @Test func theCommitIsTheCheckoutsHeadWhenBuiltFromGit() async throws {
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("head-\(UUID().uuidString).log").path
        defer { try? FileManager.default.removeItem(atPath: log) }
        let git = try ChildProcess("/usr/bin/env", ["git", "-C", Self.repository.path, "rev-parse", "--short=12", "HEAD"], stdout: log)
        guard await git.wait(timeout: .seconds(30)) == 0 else { return }   // a source tree without git
        let head = try String(contentsOfFile: log, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        // The plugin ran at build time; a commit made since then would show here as a mismatch.
        #expect(BuildInfo.commit == head || BuildInfo.commit == head + "-dirty", "built from \(BuildInfo.commit), HEAD is \(head)")
    }
}
