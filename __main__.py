"""`python -m curate …` is the `curate` command."""

from curate.pipeline.cli.main import main

if __name__ == "__main__":
    main()
