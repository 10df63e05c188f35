/// Which build is running, exported as `sg_build_info{version,commit} 1`.
public struct BuildLabels: Sendable, Equatable {
    public var version: String
    public var commit: String

    public init(version: String, commit: String) {
        self.version = version
        self.commit = commit
    }
}
