import ArgumentParser
import Foundation
import RedisClient
import StreamTools

struct ReplayReset: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reset",
        abstract: "Move a consumer group's last delivered id (XGROUP SETID), after saying how many entries that redelivers.",
        discussion: """
            Asks for confirmation on a terminal; elsewhere it needs --yes. Pending entries stay pending. \
            The worker drops a redelivered message whose seq its channel has already applied, so a reset \
            replays only what the channel state has not seen (see docs/sgctl.md).
            """
    )

    @OptionGroup var redis: RedisOptions
    @Option(help: "Stream.") var stream: String
    @Option(help: "Consumer group.") var group: String
    @Option(help: "New last delivered id: an id (ms-seq), 0 for the beginning, or $ for the end.") var to: String
    @Flag(help: "Do not ask for confirmation.") var yes = false
    @Flag(help: "Print what would happen; change nothing.") var dryRun = false
    @Flag(help: ArgumentHelp(jsonHelp)) var json = false

    func run() async throws {
        let target: ResetTarget
        do { target = try ResetTarget(to) } catch { throw ValidationError(error.description) }
        let client = try await redis.client()
        defer { client.close() }
        let reset = GroupReset(client: client, stream: stream, group: group)
        let plan: ResetPlan
        do { plan = try await reset.plan(to: target) } catch let error as ResetError { throw CommandFailure(error.description) }
        if dryRun {
            if json { printJSON(Self.report(plan, applied: false, dryRun: true)) } else { print("dry run: " + plan.text + "; nothing changed") }
            return
        }
        if !json { print(plan.text) }
        if !yes {
            guard isatty(STDIN_FILENO) == 1 else {
                throw CommandFailure("not on a terminal: pass --yes to move group \(group) (\(plan.redelivered) entries would be redelivered)")
            }
            writeStderr("Move group \(group) to \(plan.targetID)? [y/N] ")
            let answer = try await BlockingIO.run { readLine() } ?? ""
            guard ["y", "yes"].contains(answer.lowercased().trimmingCharacters(in: .whitespaces)) else {
                if json { printJSON(Self.report(plan, applied: false, dryRun: false)) } else { print("not changed") }
                throw ExitCode(1)
            }
        }
        try await reset.apply(plan)
        if json { printJSON(Self.report(plan, applied: true, dryRun: false)) } else { print("done") }
    }

    static func report(_ plan: ResetPlan, applied: Bool, dryRun: Bool) -> JSONValue {
        guard case .object(var members) = plan.json else { return plan.json }
        members += [("applied", .bool(applied)), ("dry_run", .bool(dryRun))]
        return .object(members)
    }
}
