"""`python -m analysis RUN_DIR [RUN_DIR ...]`: the same as `edgebench analyze`."""

from analysis.cli import analyze_command

if __name__ == "__main__":
    analyze_command(prog_name="python -m analysis")
