import RedisClient

/// How `sgctl` finds its Redis and its credentials, the way the worker does: `--redis-url`, else
/// `SG_REDIS_URL`, else `redis://127.0.0.1:6379`; the password from `--redis-password-file` (or
/// `SG_REDIS_PASSWORD_FILE`), else `SG_REDIS_PASSWORD`, else the URL; the user from `--redis-user`, else `SG_REDIS_USER`, else the URL.
///
/// A password inside `--redis-url` still works (an operator at a terminal may want it), but it is
/// warned about: every user of the machine can read it in `ps`.
public struct ToolConnection: Sendable, Equatable {
    public static let defaultURL = "redis://127.0.0.1:6379"

    public var configuration: RedisConfiguration
    /// What the user should hear on stderr before anything runs.
    public var warnings: [String]

    /// - Parameters:
    ///   - url: `--redis-url`, if given.
    ///   - passwordFileContents: the contents of `--redis-password-file`, if given (read by the caller, off the cooperative pool).
    ///   - urlVariable: the environment variable this URL may also come from.
    ///   - sharedCredentials: whether `SG_REDIS_PASSWORD` and `SG_REDIS_USER` apply (not for a copy's other server).
    public static func resolve(
        url: String?, passwordFileContents: String?, user: String?, environment: [String: String],
        urlOption: String = "--redis-url", urlVariable: String = "SG_REDIS_URL", sharedCredentials: Bool = true
    ) throws(ToolConnectionError) -> ToolConnection {
        var warnings: [String] = []
        let text: String
        if let url {
            text = url
            if (try? RedisConfiguration(url: url))?.password != nil {
                warnings.append("warning: \(urlOption) carries a password, which every user of this machine can read in `ps`; "
                    + "use \(urlVariable), SG_REDIS_PASSWORD or --redis-password-file instead")
            }
        } else if let fromEnvironment = environment[urlVariable], !fromEnvironment.isEmpty {
            text = fromEnvironment
        } else {
            text = defaultURL
        }
        var configuration: RedisConfiguration
        do {
            configuration = try RedisConfiguration(url: text)
        } catch {
            throw ToolConnectionError("\(url != nil ? urlOption : urlVariable): \(error)")
        }
        if let contents = passwordFileContents {
            // Secret files usually end in a newline that is not part of the password.
            var password = Substring(contents)
            while let last = password.last, last.isNewline { password = password.dropLast() }
            guard !password.isEmpty else { throw ToolConnectionError("--redis-password-file: the file is empty") }
            configuration.password = String(password)
        } else if sharedCredentials, let password = environment["SG_REDIS_PASSWORD"], !password.isEmpty {
            configuration.password = password
        }
        if let user, !user.isEmpty {
            configuration.username = user
        } else if sharedCredentials, let user = environment["SG_REDIS_USER"], !user.isEmpty {
            configuration.username = user
        }
        return ToolConnection(configuration: configuration, warnings: warnings)
    }
}

public struct ToolConnectionError: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
