from rflint.cli import main

main()
