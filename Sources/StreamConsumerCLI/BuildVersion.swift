import BuildInfo
import OperatorHTTP

/// The labels of `sg_build_info`: the release and the commit that `--version` prints.
enum BuildVersion {
    static let current = BuildLabels(version: BuildInfo.version, commit: BuildInfo.commit)
}
