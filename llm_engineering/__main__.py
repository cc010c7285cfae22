from llm_engineering.cli import main

main()
