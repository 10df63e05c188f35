import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A child process started with posix_spawn and reaped with waitpid, so tests and chaos runs control
/// signals (SIGSTOP, SIGKILL) and exit precisely, without Foundation's run-loop waits.
public final class ChildProcess: Sendable {
    public let pid: pid_t
    /// Once reaped, the pid may belong to someone else: never signal it again.
    private let reaped = Mutex(false)

    public init(_ executable: String, _ arguments: [String], stdout: String? = nil, environment: [String: String] = [:]) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        let output = stdout ?? "/dev/null"
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, output, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var merged = ProcessInfo.processInfo.environment
        for (key, value) in environment { merged[key] = value }
        let envp = merged.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { envp.forEach { free($0) } }
        // The spawning thread may block signals (the Swift runtime's threads often do), and a child
        // inherits that mask: a redis-server would then never see the SIGTERM meant to stop it.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGPIPE, SIGCHLD] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var pid: pid_t = 0
        let status = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        guard status == 0 else { throw POSIXError(POSIXErrorCode(rawValue: status) ?? .EIO) }
        self.pid = pid
    }

    public func signal(_ signal: Int32) {
        reaped.withLock { if !$0 { _ = kill(pid, signal) } }
    }

    /// Whether the kernel shows the process stopped (state `T`). `kill(SIGSTOP)` returns before
    /// every thread has stopped, and until then the process may still act.
    public var isStopped: Bool { Self.isStopped(pid) }

    /// Whether the kernel shows `pid` stopped (state `T`); false when it is gone.
    public static func isStopped(_ pid: pid_t) -> Bool { statFields(pid)?.first == "T" }

    /// The fields of `/proc/<pid>/stat` from the state on (field 3, so `[0]` is the state and
    /// `[11]`, `[12]` are utime and stime); nil when the process is gone.
    public static func statFields(_ pid: pid_t) -> [Substring]? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        // The command name may hold spaces and parentheses; it ends with the last ')'.
        return stat[stat.index(after: close)...].split(separator: " ")
    }

    /// Waits up to `timeout` for exit; returns the exit status, or nil if it is still running.
    public func wait(timeout: Duration) async -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while true {
            var status: Int32 = 0
            let r: pid_t = reaped.withLock { done in
                if done { return -1 }
                let r = waitpid(pid, &status, WNOHANG)
                if r == pid || r < 0 { done = true }
                return r
            }
            if r == pid { return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f) }
            if r < 0 { return -1 }
            if ContinuousClock.now >= deadline { return nil }
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    /// SIGKILL and reap, without suspending (for `defer` and `deinit`).
    public func killNow() {
        reaped.withLock { done in
            guard !done else { return }
            kill(pid, SIGKILL)
            var status: Int32 = 0
            _ = waitpid(pid, &status, 0)
            done = true
        }
    }
}
