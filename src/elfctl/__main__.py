from elfctl.cli.entry import main

main()
