from blastune.cli import main

main()
