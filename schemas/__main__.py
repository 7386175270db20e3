"""python -m schemas --config FILE [--output PATH]: print or write the contract schema."""
import argparse
import sys

from config import ConfigError, error_line, load
from schemas.contract import schema_text


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m schemas", description=__doc__)
    ap.add_argument("--config", default="configs/default.yaml")
    ap.add_argument("--output", help="file to write (default: stdout)")
    args = ap.parse_args(argv)
    try:
        text = schema_text(load(args.config))
    except ConfigError as e:  # the schema depends on tasks and image only: no config.validate (data layouts)
        print(error_line(e), file=sys.stderr)
        return 2
    if args.output:
        with open(args.output, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
