"""The share of inst2vec statements the vocabulary lacks (they map to !UNK), on
real programs, with LLVM 19's opaque pointers left as "ptr" and with the
Inst2vecPreprocessedText observation's typed pointers: what typing the
pointers gains. Each program as loaded (-O0) and after `opt -passes=default<Oz>`;
block labels (which the vocabulary never holds) counted apart.

    .venv/bin/python scripts/inst2vec_unk_rate.py [--csmith N] [--stress N]

Needs the inst2vec data (forkgym.datasets.inst2vec: fetched on first use) and
the build's forkgym-inst2vec-statements (build/passes/llvm/).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

import forkgym
from forkgym.datasets import inst2vec

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT / "build" / "passes" / "llvm" / "forkgym-inst2vec-statements"
OPT = "/usr/lib/llvm-19/bin/opt"


def programs(csmith: int, stress: int) -> list[str]:
    data = ROOT / "tests" / "data"
    return (["benchmark://forkgym-v0/crc32", "benchmark://forkgym-v0/small", f"file://{data}/histogram.c",
             f"file://{data}/histogram-llvm10.bc"]
            + [f"generator://csmith-v0/{i}" for i in range(1, csmith + 1)]
            + [f"generator://llvm-stress-v0/{i}" for i in range(1, stress + 1)])


def statements(bitcode: Path, opaque: bool) -> list[str]:
    command = [str(TOOL), *(["--opaque-pointers"] if opaque else []), str(bitcode)]
    return json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)


def tally(vocabulary: inst2vec.Vocabulary, found: list[str]) -> dict[str, int]:
    labels = sum(s.startswith("<LABEL>") for s in found)
    unknown = sum(s not in vocabulary.index for s in found)
    return {"statements": len(found), "unknown": unknown, "labels": labels}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--csmith", type=int, default=10)
    parser.add_argument("--stress", type=int, default=5)
    args = parser.parse_args()
    vocabulary = inst2vec.vocabulary()
    totals: dict[tuple[str, str], dict[str, int]] = {}
    with tempfile.TemporaryDirectory() as scratch, forkgym.make("llvm-v0") as env:
        for uri in programs(args.csmith, args.stress):
            env.reset(benchmark=uri)
            o0 = Path(scratch) / "o0.bc"
            env.write_bitcode(o0)
            oz = Path(scratch) / "oz.bc"
            subprocess.run([OPT, "-passes=default<Oz>", str(o0), "-o", str(oz)], check=True)
            for level, module in (("-O0", o0), ("-Oz", oz)):
                for pointers in ("opaque", "typed"):
                    row = tally(vocabulary, statements(module, pointers == "opaque"))
                    total = totals.setdefault((level, pointers), {"statements": 0, "unknown": 0, "labels": 0})
                    for key, value in row.items():
                        total[key] += value
                    print(f"{uri} {level} {pointers}: {row['unknown']}/{row['statements']} unknown "
                          f"({row['labels']} labels)")
    print("\n| programs | pointers | statements | !UNK | !UNK share | !UNK share without labels |")
    print("|---|---|---:|---:|---:|---:|")
    for (level, pointers), t in totals.items():
        share = t["unknown"] / max(t["statements"], 1)
        without = (t["unknown"] - t["labels"]) / max(t["statements"] - t["labels"], 1)
        print(f"| {level} | {pointers} | {t['statements']:,} | {t['unknown']:,} | {share:.1%} | {without:.1%} |")


if __name__ == "__main__":
    main()
