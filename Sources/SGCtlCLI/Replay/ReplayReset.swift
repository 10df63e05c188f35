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
    @Option(help: "Stream (with partitions, each of its partition streams is moved to the same id).") var stream: String
    @Option(help: "Key prefix the partition streams are laid out under (the worker's --key-prefix).") var keyPrefix = "sg"
    @OptionGroup var layout: PartitionOptions
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
        let resets = try layout.keys(prefix: keyPrefix).streams(stream).map { GroupReset(client: client, stream: $0, group: group) }
        var plans: [ResetPlan] = []
        do {
            for reset in resets { plans.append(try await reset.plan(to: target)) }
        } catch let error as ResetError {
            throw CommandFailure(error.description)
        }
        let redelivered = plans.reduce(0) { $0 + $1.redelivered }
        if dryRun {
            if json { printJSON(Self.report(plans, applied: false, dryRun: true)) } else { print(plans.map { "dry run: " + $0.text }.joined(separator: "\n") + "; nothing changed") }
            return
        }
        if !json { print(plans.map(\.text).joined(separator: "\n")) }
        if !yes {
            guard isatty(STDIN_FILENO) == 1 else {
                throw CommandFailure("not on a terminal: pass --yes to move group \(group) (\(redelivered) entries would be redelivered)")
            }
            writeStderr("Move group \(group) to \(plans[0].targetID)\(plans.count > 1 ? " on all \(plans.count) partition streams" : "")? [y/N] ")
            let answer = try await BlockingIO.run { readLine() } ?? ""
            guard ["y", "yes"].contains(answer.lowercased().trimmingCharacters(in: .whitespaces)) else {
                if json { printJSON(Self.report(plans, applied: false, dryRun: false)) } else { print("not changed") }
                throw ExitCode(1)
            }
        }
        for (reset, plan) in zip(resets, plans) { try await reset.apply(plan) }
        if json { printJSON(Self.report(plans, applied: true, dryRun: false)) } else { print("done") }
    }

    /// One plan as it was; several (one per partition) as their list with the total redelivered.
    static func report(_ plans: [ResetPlan], applied: Bool, dryRun: Bool) -> JSONValue {
        guard plans.count > 1 else { return report(plans[0], applied: applied, dryRun: dryRun) }
        return .object([
            ("group", .string(plans[0].group)), ("redelivered", JSONValue(plans.reduce(0) { $0 + $1.redelivered })),
            ("partitions", .array(plans.map(\.json))), ("applied", .bool(applied)), ("dry_run", .bool(dryRun)),
        ])
    }

    static func report(_ plan: ResetPlan, applied: Bool, dryRun: Bool) -> JSONValue {
        guard case .object(var members) = plan.json else { return plan.json }
        members += [("applied", .bool(applied)), ("dry_run", .bool(dryRun))]
        return .object(members)
    }
}
