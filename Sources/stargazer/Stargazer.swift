#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import SGCtlCLI
import StreamConsumerCLI

/// Both commands in one binary, for the container image: a link named `sgctl` or `stream-consumer`
/// runs that command, and so does `stargazer sgctl …` or `stargazer stream-consumer …`. Two static
/// binaries would each carry the Swift runtime and Foundation, about 80 MB apiece.
@main
enum Stargazer {
    static func main() async {
        let arguments = CommandLine.arguments
        let calledAs = arguments.first.flatMap { $0.split(separator: "/").last.map(String.init) } ?? ""
        switch (calledAs, arguments.dropFirst().first) {
        case ("sgctl", _):
            await SGCtl.main()
        case ("stream-consumer", _):
            MallocArenas.limit()
            await StreamConsumerCommand.main()
        case (_, "sgctl"?):
            await SGCtl.main(Array(arguments.dropFirst(2)))
        case (_, "stream-consumer"?):
            MallocArenas.limit()
            await StreamConsumerCommand.main(Array(arguments.dropFirst(2)))
        case (_, let first):
            let usage = """
                usage: stargazer sgctl [arguments…]
                       stargazer stream-consumer [arguments…]
                or call it through a link named sgctl or stream-consumer.

                """
            // Asked for, the usage is the answer; otherwise it explains a usage error.
            let asked = ["--help", "-h", "help"].contains(first ?? "")
            _ = usage.withCString { write(asked ? STDOUT_FILENO : STDERR_FILENO, $0, strlen($0)) }
            exit(asked ? 0 : 64)
        }
    }
}
