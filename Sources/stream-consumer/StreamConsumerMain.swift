import StreamConsumerCLI

@main
enum StreamConsumerMain {
    static func main() async {
        await StreamConsumerCommand.main()
    }
}
