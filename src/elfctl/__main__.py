from elfctl.cli.main import main

main()
