import SGCtlCLI

@main
enum SGCtlMain {
    static func main() async {
        await SGCtl.main()
    }
}
