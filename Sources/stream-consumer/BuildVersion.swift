import OperatorHTTP

/// The build that `sg_build_info` names. The version is bumped with each release; this source
/// tree cannot know its own git commit, so the commit stays "unknown" until the build stamps it
/// (the `--version` work, issue 15 item 5, brings that stamp).
enum BuildVersion {
    static let current = BuildInfo(version: "0.1.0", commit: "unknown")
}
