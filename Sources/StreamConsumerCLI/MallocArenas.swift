#if canImport(Glibc)
import CMalloc
import Glibc
#endif

/// glibc gives each thread that allocates an arena of its own, up to eight per core, and memory
/// freed in one arena is never handed to another. A worker allocates on its I/O threads and on
/// every thread of the cooperative pool, so with thousands of channels in flight its peak RSS is
/// the sum of several arenas' high-water marks. Two arenas lowered that peak by about a tenth
/// (docs/benchmarks.md) with no throughput cost beyond the noise.
public enum MallocArenas {
    static let defaultLimit: Int32 = 2

    /// Caps the number of arenas unless the operator chose one (`MALLOC_ARENA_MAX`, or
    /// `glibc.malloc.arena_max` in `GLIBC_TUNABLES`); glibc reads those itself. Call it first
    /// thing, before other threads allocate.
    public static func limit() {
        #if canImport(Glibc)
        guard getenv("MALLOC_ARENA_MAX") == nil else { return }
        if let tunables = getenv("GLIBC_TUNABLES"), String(cString: tunables).contains("arena_max") { return }
        _ = mallopt(M_ARENA_MAX, defaultLimit)
        #endif
    }
}
