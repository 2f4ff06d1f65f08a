"""Every benchmark of issues 7, 14 and 16, one after the other, then all their tables together.

    .venv/bin/python benchmarks/run.py [--quick]
        [create steady retention pg_partman partsmith shapes indexes export convert rollup
         handover
         tenants fleet footprint]

With no names it runs them all (footprint is then measured by the steady-state run, at its
~30k size, instead of building that database a second time). `--quick` runs tiny sizes, to
check that everything works; the numbers it prints mean nothing. Each benchmark is also a
script of its own, with its own options (see benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import sys
import time

import benchlib as b
import convert
import create
import export
import fleet
import footprint
import handover
import indexes
import retention
import rollup
import shapes
import steady
import tenants
import vs_partsmith
import vs_pg_partman

ORDER = (
    "create",
    "steady",
    "retention",
    "pg_partman",
    "partsmith",
    "shapes",
    "indexes",
    "export",
    "convert",
    "rollup",
    "handover",
    "tenants",
    "fleet",
    "footprint",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", choices=[[], *ORDER], metavar="NAME")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to check the scripts")
    args = parser.parse_args(argv)
    names = args.names or list(ORDER)
    if not args.names:
        names.remove("footprint")  # measured by steady --footprint
    quick = ["--quick"] if args.quick else []
    mains = {
        "create": lambda: create.main(quick),
        "steady": lambda: steady.main(
            [*quick, *(["--footprint"] if "footprint" not in names else [])]
        ),
        "retention": lambda: retention.main(quick),
        "pg_partman": lambda: vs_pg_partman.main(quick),
        "partsmith": lambda: vs_partsmith.main(quick),
        "shapes": lambda: shapes.main(quick),
        "indexes": lambda: indexes.main(quick),
        "export": lambda: export.main(quick),
        "convert": lambda: convert.main(quick),
        "rollup": lambda: rollup.main(quick),
        "handover": lambda: handover.main(quick),
        "tenants": lambda: tenants.main(quick),
        "fleet": lambda: fleet.main(quick),
        "footprint": lambda: footprint.main(quick),
    }
    started = time.perf_counter()
    for name in ORDER:
        if name in names:
            b.console.rule(f"{name}")
            t0 = time.perf_counter()
            mains[name]()
            b.progress(f"{name}: {b.secs(time.perf_counter() - t0)}")
    b.console.rule(f"all tables ({b.secs(time.perf_counter() - started)} in all)")
    for table, notes in b.PRINTED:
        b.show(table, notes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
