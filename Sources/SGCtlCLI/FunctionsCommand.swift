import ArgumentParser
import Foundation
import RedisClient
import StreamWorker

/// The deploy step that loads the worker's Redis functions, so the worker user needs no
/// FUNCTION LOAD, EVAL or SCRIPT LOAD of its own (docs/operations.md).
struct FunctionsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "functions",
        abstract: "The worker's Redis functions (the deploy step).",
        subcommands: [FunctionsLoad.self]
    )
}

struct FunctionsLoad: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "load",
        abstract: "Load every Redis function this version of the worker calls (as an admin user; safe to repeat).",
        discussion: """
            Each script is a library named after a digest of its code, so loading never replaces what \
            workers of another version call. Functions persist in RDB and AOF, so this is needed once per \
            deploy, not after a Redis restart. The connection options are sgctl's own: the password from \
            --redis-password-file, SG_REDIS_PASSWORD_FILE, SG_REDIS_PASSWORD or the URL.
            """
    )

    @OptionGroup var redis: RedisOptions
    @Flag(help: ArgumentHelp(jsonHelp)) var json = false

    func run() async throws {
        let client = try await redis.client()
        defer { client.close() }
        let scripts = WorkerScripts.all
        let loaded = try await client.loadFunctions(scripts)
        if json {
            printJSONLine(["libraries": scripts.count, "loaded": loaded, "already_present": scripts.count - loaded])
        } else {
            print("\(scripts.count) libraries: \(loaded) loaded, \(scripts.count - loaded) already present")
        }
    }
}
