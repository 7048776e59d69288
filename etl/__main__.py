from etl.cli.main import main


main()
