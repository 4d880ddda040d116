from qatlan.cli import main

main()
