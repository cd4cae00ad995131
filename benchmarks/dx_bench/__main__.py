"""`uv run python -m dx_bench <benchmark> [options]`; `<benchmark> --help` for each one's options."""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = {
    "e2e": "the four services end to end, against a minimal pipeline measured in the same run",
    "training": "signed webhook completions accepted per second by the training service alone",
    "reporting": "plan/department report latency after 10,000 and 1,000,000 events; consumer rate",
    "nomination": "roster import rows per second",
    "auth": "a token check's cost per request, as a ratio to an open route",
}


def usage() -> str:
    lines = ["usage: python -m dx_bench <benchmark> [options]", "", "benchmarks:"]
    lines += [f"  {name:<11} {what}" for name, what in BENCHMARKS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    if not arguments or arguments[0] not in BENCHMARKS:
        print(usage(), file=sys.stderr if arguments and arguments[0] not in ("-h", "--help") else sys.stdout)
        return 0 if not arguments or arguments[0] in ("-h", "--help") else 2
    module = importlib.import_module(f"dx_bench.{arguments[0]}")
    result = module.main(arguments[1:])
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
