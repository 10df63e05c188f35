#if canImport(Glibc)
import CMalloc
import Glibc
#endif

/// glibc gives a thread that meets a locked arena an arena of its own, up to eight per core, and
/// memory freed in one arena is never handed to another. A worker allocates on its I/O threads and
/// on every thread of the cooperative pool, so with thousands of channels in flight its peak RSS
/// is the sum of several arenas' high-water marks. Two arenas cut that peak by about a sixth
/// (docs/benchmarks.md) without a measurable cost in throughput on this workload.
public enum MallocArenas {
    static let defaultLimit: Int32 = 2

    /// Caps the number of arenas unless `MALLOC_ARENA_MAX` is set (glibc reads that itself, and
    /// the operator's choice wins). Call it first thing, before other threads allocate.
    public static func limit() {
        #if canImport(Glibc)
        guard getenv("MALLOC_ARENA_MAX") == nil else { return }
        _ = mallopt(M_ARENA_MAX, defaultLimit)
        #endif
    }
}
