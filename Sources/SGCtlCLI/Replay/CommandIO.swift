import Dispatch
import Foundation
import StreamTools

/// Runs blocking file and terminal I/O on a serial dispatch queue, never on a cooperative thread.
enum BlockingIO {
    static let queue = DispatchQueue(label: "sgctl.blocking-io")

    static func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { continuation.resume(with: Result { try body() }) }
        }
    }
}

/// Lines of a file or stdin, read in chunks on ``BlockingIO/queue``.
// @unchecked Sendable: `handle`, `buffer`, `start`, `eof` and `lineNumber` are only touched inside BlockingIO.queue blocks,
// and the queue is serial.
final class LineSource: @unchecked Sendable {
    private let handle: FileHandle
    private var buffer: [UInt8] = []
    private var start = 0
    private var eof = false
    private(set) var lineNumber = 0
    let name: String

    /// `-` or nil reads stdin.
    init(path: String?) throws {
        if let path, path != "-" {
            guard let handle = FileHandle(forReadingAtPath: path) else { throw ReplayCommandError.cannotOpen(path) }
            self.handle = handle
            self.name = path
        } else {
            self.handle = FileHandle.standardInput
            self.name = "stdin"
        }
    }

    /// Up to `max` lines with their numbers (1-based), or an empty array at the end.
    func next(max: Int) async throws -> [(number: Int, line: [UInt8])] {
        try await BlockingIO.run { self.readLines(max: max) }
    }

    private func readLines(max: Int) -> [(number: Int, line: [UInt8])] {
        var lines: [(Int, [UInt8])] = []
        while lines.count < max {
            // `start` moves past each line; the buffer is compacted once per chunk, not once per line.
            if let newline = buffer[start...].firstIndex(of: 0x0A) {
                lineNumber += 1
                var line = Array(buffer[start..<newline])
                if line.last == 0x0D { line.removeLast() }
                lines.append((lineNumber, line))
                start = newline + 1
                continue
            }
            if eof {
                if start < buffer.count {
                    lineNumber += 1
                    lines.append((lineNumber, Array(buffer[start...])))
                }
                buffer = []
                start = 0
                break
            }
            buffer.removeSubrange(..<start)
            start = 0
            let chunk = handle.readData(ofLength: 1 << 16)
            if chunk.isEmpty { eof = true } else { buffer.append(contentsOf: chunk) }
        }
        return lines
    }
}

/// Lines to stdout or a file, written on ``BlockingIO/queue`` (a slow reader of a pipe blocks that queue, not the pool).
// @unchecked Sendable: `handle` is only written inside BlockingIO.queue blocks.
final class LineSink: @unchecked Sendable {
    private let handle: FileHandle
    let isStdout: Bool

    init(path: String?) throws {
        if let path, path != "-" {
            guard FileManager.default.createFile(atPath: path, contents: nil),
                  let handle = FileHandle(forWritingAtPath: path) else { throw ReplayCommandError.cannotCreate(path) }
            self.handle = handle
            isStdout = false
        } else {
            handle = FileHandle.standardOutput
            isStdout = true
        }
    }

    func write(_ lines: [String]) async throws {
        guard !lines.isEmpty else { return }
        var text = lines.joined(separator: "\n")
        text += "\n"
        let data = Data(text.utf8)
        let handle = self.handle
        try await BlockingIO.run { try handle.write(contentsOf: data) }
    }

    func close() async throws {
        let handle = self.handle
        let isStdout = self.isStdout
        try await BlockingIO.run { if !isStdout { try handle.close() } }
    }
}

/// Progress on stderr: a bar on a terminal, periodic lines otherwise, nothing when disabled.
struct ProgressDisplay {
    private var meter: ProgressMeter?
    private let start = ContinuousClock.now

    init(label: String, total: Int?, enabled: Bool) {
        guard enabled else { return }
        let style: ProgressMeter.Style = isatty(STDERR_FILENO) == 1 ? .bar(width: 30) : .lines
        meter = ProgressMeter(label: label, total: total, style: style)
    }

    mutating func update(_ done: Int) {
        let elapsed = ContinuousClock.now - start
        if let text = meter?.update(done: done, elapsed: elapsed) { writeStderr(text) }
    }

    func finish(_ done: Int) {
        if let text = meter?.finish(done: done, elapsed: ContinuousClock.now - start) { writeStderr(text) }
    }
}

/// A short write to stderr (progress and prompts; too small to hold a thread for long).
func writeStderr(_ text: String) {
    FileHandle.standardError.write(Data(text.utf8))
}

/// One JSON document on one line of stdout.
func printJSON(_ value: JSONValue) {
    print(value.serialized)
}

enum ReplayCommandError: Error, CustomStringConvertible {
    case cannotOpen(String)
    case cannotCreate(String)

    var description: String {
        switch self {
        case .cannotOpen(let p): return "cannot open '\(p)' for reading"
        case .cannotCreate(let p): return "cannot create '\(p)'"
        }
    }
}

/// A failure at run time (not a usage mistake): printed as `Error: …` without the usage text, exit status 1.
struct CommandFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
