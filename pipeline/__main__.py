"""`python -m pipeline {quantize|validate} [--flags]`."""
from pipeline.cli.main import run

if __name__ == "__main__":
    run()
