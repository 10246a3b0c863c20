"""scripts/bench --quick keeps working (it measures; nothing here is timed)."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_quick_bench_runs_and_writes_its_tables():
    completed = subprocess.run([sys.executable, str(ROOT / "scripts/bench.py"), "--quick"],
                               capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "### Step latency" in completed.stdout
    report = json.loads((ROOT / "bench-out/bench.json").read_text())
    assert set(report["modules"]) == {"small", "medium"}
    assert report["memory"]["1"]["worker_uss_kb_median"] > 0
    assert "### gcc-v0 step beside a plain `gcc -c` loop" in completed.stdout
    assert report["gcc"]["crc32.c"]["episode_step"]["p50_us"] > 0
    assert report["gcc"]["crc32.c"]["client_step"]["p50_us"] > 0
    # The greedy search row: both job counts found the same sequence (the speed-up is measured, not asserted).
    assert report["search"]["same_result"] and report["search"]["speedup"] > 0
    assert "### Greedy search, --jobs 2 beside --jobs 1" in completed.stdout
    # The env pool's rows beside the vector env's, and its 1-core / 2-core comparison.
    for row in report["throughput"].values():
        assert row["pool_steps_per_s"] > 0 and row["pool_full_batch_steps_per_s"] > 0 and row["vector_steps_per_s"] > 0
    assert report["core_scaling"].get("ratio", 1) > 0
    assert "2 cores / 1 core" in completed.stdout
    assert report["fork"]["rows"]["small"]["python_p50_us"] > 0 and report["fork"]["rows"]["small"]["cpp_p50_us"] > 0
    assert "### Python env.fork() beside the C++ client's fork()" in completed.stdout
    # The state cache's rows: the cached searches found what the uncached one did.
    cache = report["state_cache"]
    assert cache["search"]["same_result"] and cache["search"]["speedup"] > 0
    for row in cache["rl"]["policies"].values():
        assert row["lookups"] > 0 and 0 <= row["hit_rate"] <= 1
    assert "### State cache: greedy search run twice" in completed.stdout
    # The code generation rows: the observation on a changed state beside clang-19 on its bitcode, equal, and
    # the phases around it.
    for module in report["modules"].values():
        paths = {row["path"] for row in module["runtime"]["rows"]}
        assert {"ObjectTextSizeBytes (client)", "clang-19 -c -x ir (subprocess)", "ObjectTextSizeBytes at reset (client)",
                "codegen phase: bitcode write (worker)", "codegen phase: bitcode parse"} <= paths
        assert module["runtime"]["object_size_equals_clang"]
    assert "clang / code generation alone" in completed.stdout
