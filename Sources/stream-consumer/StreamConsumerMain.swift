import StreamConsumerCLI

@main
enum StreamConsumerMain {
    static func main() async {
        MallocArenas.limit()
        await StreamConsumerCommand.main()
    }
}
