"""``python -m fastloss COMMAND``: ``bench`` (the benchmark suite) or ``config``."""

import os
import sys

USAGE = """usage: python -m fastloss COMMAND [options]

commands:
  bench    benchmark fastloss against fastloss.reference and the installed peers
           (torch, SciPy, scikit-learn, MONAI); `python -m fastloss bench --help`
  config   print the version, OpenMP status, default threads and CPU target
"""


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE, end="")
        return 0
    cmd, rest = argv[0], argv[1:]
    if cmd == "bench":
        from fastloss.bench.cli import main as bench_main

        return bench_main(rest)
    if cmd == "config":
        import fastloss

        fastloss.show_config()
        return 0
    print(f"unknown command {cmd!r}\n\n{USAGE}", end="", file=sys.stderr)
    return 2


def run():
    """main() as a command: a reader that closes the pipe early (``python -m
    fastloss config | head -3``) ends the output quietly, as for a Unix
    filter, instead of with a traceback."""
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:
        # stdout to devnull: the interpreter flushes it again at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 1
    return code


if __name__ == "__main__":
    sys.exit(run())
