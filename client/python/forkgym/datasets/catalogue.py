"""The catalogue: every dataset forkgym knows by name, as one table of rows.

Each row is one dataset — CompilerGym's fifteen (and their deprecated
aliases, which resolve but are not listed), forkgym's bundled programs, the
cache make_benchmark() fills, the generators, and GCC's C torture suite. The
facts (URLs, SHA-256s, archive layouts, compile flags, counts) are CompilerGym's
(v0.2.5, Linux). Everything else — listing, installing, the dataset.ini the
server resolves URIs with, the command line — is derived from these rows.

**Adding a dataset is adding a row** (see the README's "Adding a dataset"):

    Entry(
        name="benchmark://mysuite-v0",
        kind=PREBUILT,                       # or SOURCE (compiled on demand)
        description="...", license="...", size=123,
        tarball=remote("https://host/mysuite-v0.tar.bz2", "<sha256 of the file>"),
        manifest=remote("https://host/mysuite-v0-manifest.bz2", "<sha256>"),
        strip_prefix="mysuite-v0",           # the archive's directory holding the files
    ),

Kinds:
  * ``prebuilt``: an archive of ``.bc``/``.ll`` files the server loads as they
    are; ``benchmark://<name>/<path>`` names ``<root>/<path><suffix>``.
  * ``source``: an archive of sources the server compiles on demand with
    ``flags`` after the base command (``-c -emit-llvm -O1 -Xclang
    -disable-llvm-passes -Xclang -disable-llvm-optzns``), caching the module as
    ``<root>/<path><suffix>.bc`` beside its source.
  * ``generator``: ``generator://<name>/<seed>``, made by the server on demand.
  * ``bundled``: programs shipped inside the Python package (always installed).
  * ``cache``: what ``make_benchmark()`` captured (``benchmark://user-v0/<digest>``).

A dataset's root is ``contents/<strip_prefix>`` of its directory
(``<site>/datasets/<name>/``; :mod:`forkgym.datasets.paths`); its manifest
(one path per line, no suffix) lists it without its archive. ``size`` is the
documented count (Linux), shown before a manifest is fetched; once a manifest
is here, its line count is the size. ``version`` is the name's ``-v<N>``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PREBUILT = "prebuilt"
SOURCE = "source"
GENERATOR = "generator"
BUNDLED = "bundled"
CACHE = "cache"
KINDS = (PREBUILT, SOURCE, GENERATOR, BUNDLED, CACHE)


@dataclass(frozen=True)
class Remote:
    """A file the catalogue downloads: its URLs, tried in order, and its SHA-256
    (of the file as downloaded, compressed)."""

    urls: tuple[str, ...]
    sha256: str


@dataclass(frozen=True)
class Extra:
    """A file a dataset needs beside its archive: a tarball is extracted into the
    directory ``into`` of the dataset's directory, any other file (decompressed)
    saved as ``into``."""

    remote: Remote
    into: str


@dataclass(frozen=True)
class Entry:
    """One dataset. Defaults: sort order 0, not deprecated, validatable "No",
    suffix ``.bc``, language bitcode, strip prefix = the name without scheme."""

    name: str  # with its scheme: benchmark://cbench-v1, generator://csmith-v0
    kind: str
    description: str
    license: str
    size: int  # documented benchmark count (0: unbounded, a generator)
    references: tuple[tuple[str, str], ...] = ()
    tarball: Remote | None = None
    manifest: Remote | None = None
    strip_prefix: str | None = None
    suffix: str = ".bc"
    language: str = "bitcode"  # bitcode | c | c++ | opencl
    flags: str = ""  # clang flags after the base command; {dataset} = the dataset directory
    transform: str = ""  # a named source rewrite the server applies before compiling
    extras: tuple[Extra, ...] = ()
    # The benchmark list when there is no manifest to download (CHStone's
    # twelve programs): written as the manifest at install.
    fixed: tuple[str, ...] = ()
    # A named step run after extraction (see forkgym.datasets.dataset's
    # _LAYOUT_STEPS), for an archive whose layout the rule above does not fit.
    layout: str = ""
    # A dataset built on this machine instead of downloaded: "module:function"
    # called as function(entry, directory) to fill the dataset directory
    # (contents and manifest) before dataset.ini and the marker are written.
    installer: str = ""
    runnable: bool = False  # programs that run and check themselves
    runnable_prefix: str = ""  # only the paths starting with this are runnable ("" = all)
    # Per-program run configurations built in the client from data the install
    # brings ("cbench": forkgym.datasets.cbench_runs, from the runtime data).
    run_configs: str = ""
    deprecated: str = ""  # the message; non-empty = deprecated (resolves, not listed)
    validatable: str = "No"
    sort_order: int = 0
    listed: bool = True  # False: resolvable by name but never iterated (user-v0)

    @property
    def bare_name(self) -> str:
        return self.name.split("://", 1)[1]

    @property
    def scheme(self) -> str:
        return self.name.split("://", 1)[0]

    @property
    def root(self) -> str:
        """The benchmark root, relative to the dataset directory."""
        return "contents/" + (self.bare_name if self.strip_prefix is None else self.strip_prefix)

    @property
    def version(self) -> int:
        match = re.search(r"-v(\d+)$", self.name)
        return int(match.group(1)) if match else 0


def remote(*urls: str, sha256: str) -> Remote:
    return Remote(tuple(urls), sha256)


def _cg(file_name: str, sha256: str) -> Remote:
    """A file of CompilerGym's download area."""
    return remote("https://dl.fbaipublicfiles.com/compiler_gym/" + file_name, sha256=sha256)


# ------------------------------------------------------------ references --

_ANGHA = (("Paper", "https://homepages.dcc.ufmg.br/~fernando/publications/papers/FaustinoCGO21.pdf"),
          ("Homepage", "http://cuda.dcc.ufmg.br/angha/"))
_BLAS = (("Paper", "https://strum355.netsoc.co/books/PDF/Basic%20Linear%20Algebra%20Subprograms%20for%20Fortran"
                   "%20Usage%20-%20BLAS%20(1979).pdf"),
         ("Homepage", "http://www.netlib.org/blas/"))
_CBENCH = (("Paper", "https://arxiv.org/pdf/1407.3487.pdf"),
           ("Homepage", "https://ctuning.org/wiki/index.php/CTools:CBench"))
_CHSTONE = (("Paper", "http://www.yxi.com/applications/iscas2008-300_1027.pdf"),
            ("Homepage", "http://www.ertl.jp/chstone/"))
_CLGEN = (("Paper", "https://chriscummins.cc/pub/2017-cgo.pdf"), ("Homepage", "https://github.com/ChrisCummins/clgen"))
_GITHUB = (("Paper", "https://arxiv.org/pdf/2012.01470.pdf"),)
_LINUX = (("Homepage", "https://www.linux.org/"),)
_MIBENCH = (("Paper", "http://vhosts.eecs.umich.edu/mibench/Publications/MiBench.pdf"),)
_NPB = (("Paper", "http://optout.csc.ncsu.edu/~mueller/codeopt/codeopt05/projects/www4.ncsu.edu/~pgauria/csc791a/"
                  "papers/NAS-95-020.pdf"),)
_OPENCV = (("Paper", "https://mipro-proceedings.com/sites/mipro-proceedings.com/files/upload/sp/sp_008.pdf"),
           ("Homepage", "https://opencv.org/"))
_POJ104 = (("Paper", "https://ojs.aaai.org/index.php/AAAI/article/download/10139/9998"),
           ("Homepage", "https://sites.google.com/site/treebasedcnn/"))
_TENSORFLOW = (("Paper", "https://www.usenix.org/system/files/conference/osdi16/osdi16-abadi.pdf"),
               ("Homepage", "https://www.tensorflow.org/"))
_CSMITH = (("Paper", "http://web.cse.ohio-state.edu/~rountev.1/5343/pdf/pldi11.pdf"),
           ("Homepage", "https://embed.cs.utah.edu/csmith/"))
_LLVM_STRESS = (("Documentation", "https://llvm.org/docs/CommandGuide/llvm-stress.html"),)
_CTORTURE = (("Homepage", "https://gcc.gnu.org/onlinedocs/gccint/C-Tests.html"),)

# ------------------------------------------------------------ shared files --

_ANGHA_TAR = remote(
    "https://github.com/brenocfg/AnghaBench/archive/d8034ac8562b8c978376008f4b33df01b8887b19.tar.gz",
    sha256="85d068e4ce44f2581e3355ee7a8f3ccb92568e9f5bd338bc3a918566f3aff42f")
_ANGHA_PREFIX = "AnghaBench-d8034ac8562b8c978376008f4b33df01b8887b19"
_CBENCH_V1_TAR = _cg("llvm_bitcodes-10.0.0-cBench-v1-linux.tar.bz2",
                     "601fff3944c866f6617e653b6eb5c1521382c935f56ca1f36a9f5cf1a49f3de5")
_CBENCH_RUNTIME_DATA = Extra(_cg("cBench-v0-runtime-data.tar.bz2",
                                 "a1b5b5d6b115e5809ccaefc2134434494271d184da67e2ee43d7f84d07329055"),
                             into="runtime-data")  # holds runtime_data/
_MIBENCH_MANIFEST = _cg("llvm_bitcodes-10.0.0-mibench-v0-manifest.bz2",
                        "8ed985d685b48f444a3312cd84ccc5debda4a839850e442a3cdc93910ba0dc5f")
# Clang flags of CompilerGym's C datasets (after its base command).
_C_FLAGS = "-ferror-limit=1 -w"
# GCC's torture tests: those, and what clang 16 made errors turned back into
# warnings (which -w silences): implicit int, implicit function declarations,
# int/pointer and function-pointer mismatches, return value mismatches. GCC
# 12, the suite's compiler, and clang 10, CompilerGym's, accept these
# C89-era constructs, and a third of the tests use them (calling abort()
# undeclared above all): with _C_FLAGS alone clang 19 rejects 1,307 of the
# 3,495 programs, with these 96.
_CTORTURE_FLAGS = (_C_FLAGS + " -Wno-error=implicit-function-declaration -Wno-error=implicit-int "
                   "-Wno-error=int-conversion -Wno-error=incompatible-function-pointer-types "
                   "-Wno-error=return-mismatch")

# CHStone's programs, in CompilerGym's order; each is <name>/<name>.c in the
# archive except these. The install normalises them (a <root>/<name>.c that
# includes the real file), so the dataset follows the <root>/<path><suffix>
# rule like every other.
CHSTONE_PROGRAMS = ("adpcm", "aes", "blowfish", "dfadd", "dfdiv", "dfmul", "dfsin", "gsm", "jpeg", "mips", "motion",
                    "sha")
CHSTONE_MAIN_FILES = {"blowfish": "bf.c", "motion": "mpeg2.c", "sha": "sha_driver.c", "jpeg": "main.c"}

# ------------------------------------------------------------------ rows --

CATALOGUE: tuple[Entry, ...] = (
    # --- prebuilt LLVM 10 bitcode (LLVM 19 reads it) ---
    Entry("benchmark://blas-v0", PREBUILT, "Basic linear algebra kernels", "BSD 3-Clause", 300, _BLAS,
          tarball=_cg("llvm_bitcodes-10.0.0-blas-v0.tar.bz2",
                      "e724a8114709f8480adeb9873d48e426e8d9444b00cddce48e342b9f0f2b096d"),
          manifest=_cg("llvm_bitcodes-10.0.0-blas-v0-manifest.bz2",
                       "6946437dcb0da5fad3ed8a7fd83eb4294964198391d5537b1310e22d7ceebff4")),
    Entry("benchmark://cbench-v1", PREBUILT, "Runnable C benchmarks", "BSD 3-Clause", 23, _CBENCH,
          tarball=_CBENCH_V1_TAR,
          manifest=_cg("llvm_bitcodes-10.0.0-cbench-v1-manifest.bz2",
                       "eeffd7593aeb696a160fd22e6b0c382198a65d0918b8440253ea458cfe927741"),
          strip_prefix="cBench-v1", extras=(_CBENCH_RUNTIME_DATA,), validatable="Partially", sort_order=-1,
          run_configs="cbench"),
    Entry("benchmark://github-v0", PREBUILT, "Compile-only C/C++ objects from GitHub", "CC BY 4.0", 49_738, _GITHUB,
          tarball=_cg("llvm_bitcodes-10.0.0-github-v0.tar.bz2",
                      "880269dd7a5c2508ea222a2e54c318c38c8090eb105c0a87c595e9dd31720764"),
          manifest=_cg("llvm_bitcodes-10.0.0-github-v0-linux-manifest.bz2",
                       "aede9ca78657b4694ada9a4592d93f0bbeb3b3bd0fff3b537209850228480d3b")),
    Entry("benchmark://linux-v0", PREBUILT, "Compile-only object files from C Linux kernel", "GPL-2.0", 13_894,
          _LINUX,
          tarball=_cg("llvm_bitcodes-10.0.0-linux-v0.tar.bz2",
                      "a1ae5c376af30ab042c9e54dc432f89ce75f9ebaee953bc19c08aff070f12566"),
          manifest=_cg("llvm_bitcodes-10.0.0-linux-v0-linux-manifest.bz2",
                       "32ceb8576f683798010816ac605ee496f386ddbbe64be9e0796015d247a73f92")),
    Entry("benchmark://mibench-v1", PREBUILT, "C benchmarks", "BSD 3-Clause", 40, _MIBENCH,
          tarball=_cg("llvm_bitcodes-10.0.0-mibench-v1.tar.bz2",
                      "795b80d3198bc96e394823a4cb294d256845beffccce52fea0e3446395212bb5"),
          manifest=_MIBENCH_MANIFEST),
    Entry("benchmark://npb-v0", PREBUILT, "NASA Parallel Benchmarks", "NASA Open Source Agreement v1.3", 122, _NPB,
          tarball=_cg("llvm_bitcodes-10.0.0-npb-v0.tar.bz2",
                      "793ac2e7a4f4ed83709e8a270371e65b724da09eaa0095c52e7f4209f63bb1f2"),
          manifest=_cg("llvm_bitcodes-10.0.0-npb-v0-manifest.bz2",
                       "89eccb7f1b0b9e1f82b9b900b9f686ff5b189a2a67a4f8969a15901cd315dba2")),
    Entry("benchmark://opencv-v0", PREBUILT, "Compile-only object files from C++ OpenCV library", "Apache 2.0", 442,
          _OPENCV,
          tarball=_cg("llvm_bitcodes-10.0.0-opencv-v0.tar.bz2",
                      "003df853bd58df93572862ca2f934c7b129db2a3573bcae69a2e59431037205c"),
          manifest=_cg("llvm_bitcodes-10.0.0-opencv-v0-manifest.bz2",
                       "8de96f722fab18f3a2a74db74b4038c7947fe8b3da867c9260206fdf5338cd81")),
    Entry("benchmark://tensorflow-v0", PREBUILT, "Compile-only object files from C++ TensorFlow library",
          "Apache 2.0", 1_985, _TENSORFLOW,
          tarball=_cg("llvm_bitcodes-10.0.0-tensorflow-v0.tar.bz2",
                      "f77dd1988c772e8359e1303cc9aba0d73d5eb27e0c98415ac3348076ab94efd1"),
          manifest=_cg("llvm_bitcodes-10.0.0-tensorflow-v0-manifest.bz2",
                       "cffc45cd10250d483cb093dec913c8a7da64026686284cccf404623bd1da6da8")),
    # --- sources, compiled on demand by the server ---
    Entry("benchmark://anghabench-v1", SOURCE, "Compile-only C/C++ functions extracted from GitHub",
          "Unknown. See: https://github.com/brenocfg/AnghaBench/issues/1", 1_041_333, _ANGHA,
          tarball=_ANGHA_TAR,
          manifest=_cg("llvm_bitcodes-10.0.0-anghabench-v1-linux-manifest.bz2",
                       "14df85f650199498cf769715e9f0d7841d09f9fa62a95b8ecc242bdaf227f33a"),
          strip_prefix=_ANGHA_PREFIX, suffix=".c", language="c", flags=_C_FLAGS),
    Entry("benchmark://chstone-v0", SOURCE, "Benchmarks for C-based High-Level Synthesis",
          "Mixture of open source and public domain licenses", 12, _CHSTONE,
          tarball=remote("https://github.com/ChrisCummins/patmos_HLS/archive/"
                         "e62d878ceb91e5a18007ca2e0a9602ee44ff7d59.tar.gz",
                         sha256="f7acab9d3c3dc7b971e62c8454bc909d84bddb6d0a96378e41beb94231739acb"),
          strip_prefix="patmos_HLS-e62d878ceb91e5a18007ca2e0a9602ee44ff7d59/benchmarks/CHStone",
          suffix=".c", language="c", flags=_C_FLAGS, fixed=CHSTONE_PROGRAMS, layout="chstone"),
    Entry("benchmark://clgen-v0", SOURCE, "Synthetically generated OpenCL kernels",
          "GNU General Public License v3.0", 996, _CLGEN,
          tarball=remote("https://github.com/ChrisCummins/paper-synthesizing-benchmarks/raw/"
                         "e45b6dffe9998f612624f05a6c4878ab4bcc84ec/data/clgen-1000.tar.bz2",
                         sha256="0bbd1b737f2537305e4db09b2971a5fa848b7c3a978bff6b570f45d1a488a72c"),
          manifest=_cg("llvm_bitcodes-10.0.0-clgen-v0-manifest.bz2",
                       "d2bbc1da5a24a8cb03b604d1d8e59227b33bdfcd964ebe741ca8339f1c8d65cc"),
          strip_prefix="clgen-1000/kernels", suffix=".cl", language="opencl",
          flags="-isystem {dataset}/libclc -include {dataset}/opencl.h -target nvptx64-nvidia-nvcl " + _C_FLAGS,
          extras=(Extra(_cg("libclc-v0.tar.bz2", "f1c511f2ac12adf98dcc0fbfc4e09d0f755fa403c18f1fb1ffa5547e1fa1a499"),
                        into="libclc"),
                  Extra(remote("https://github.com/ChrisCummins/clgen/raw/463c0adcd8abcf2432b24df0aca594b77a69e9d3/"
                               "deeplearning/clgen/data/include/opencl.h",
                               sha256="f95b9f4c8b1d09114e491846d0d41425d24930ac167e024f45dab8071d19f3f7"),
                        into="opencl.h"))),
    Entry("benchmark://jotaibench-v0", SOURCE, "Compile-only C functions extracted from GitHub (Jotai)",
          "GNU General Public License v3.0 (GPLv3)", 18_761, _ANGHA,
          tarball=remote("https://github.com/ChrisCummins/jotai-benchmarks/raw/"
                         "ca26ccd27afecf38919c1e101c64e3cc17e39631/benchmarks/jotaibench.bz2",
                         sha256="b5a51af3d4e2f77a66001635ec64ed321e0ece19873c4a888040859af7556401"),
          manifest=_cg("llvm_bitcodes-10.0.0-jotaibench-v0.bz2",
                       "ac4ee456e52073964d472d3e3969058b2f3052f8a4b402719013a3c603eb4b62"),
          strip_prefix="jotaibench/jotaibench-v0", suffix=".c", language="c", flags=_C_FLAGS),
    Entry("benchmark://poj104-v1", SOURCE, "Solutions to programming programs", "BSD 3-Clause", 49_816, _POJ104,
          tarball=remote("https://dl.fbaipublicfiles.com/compiler_gym/llvm_bitcodes-10.0.0-poj104-v1.tar.gz",
                         "https://drive.google.com/u/0/uc?id=0B2i-vWnOu7MxVlJwQXN6eVNONUU&export=download",
                         sha256="c0b8ef3ee9c9159c882dc9337cb46da0e612a28e24852a83f8a1cd68c838f390"),
          manifest=_cg("llvm_bitcodes-10.0.0-poj104-v1-linux-manifest.bz2",
                       "ee6253ee826e171816105e76fa78c0d3cbd319ef66e10da4bcf9cf8a78e12ab9"),
          strip_prefix="ProgramData", suffix=".txt", language="c++", flags="-xc++ -ferror-limit=1 -w -std=c++11",
          transform="poj104"),
    # Built on this machine from Debian's gcc-12-source (no download): see
    # forkgym.datasets.ctorture, which fills in the contents and manifest,
    # leaving out what clang 19 (with these flags) or GCC's test suite rules out.
    Entry("benchmark://gcc-c-torture-v0", SOURCE,
          "GCC 12's C torture tests (gcc.c-torture/execute, self-checking and runnable, and compile), from "
          "Debian's gcc-12-source; those clang 19 rejects or GCC's test suite says need options of their own "
          "are left out at install (excluded.txt in its directory: how many, which, why)",
          "GNU General Public License v3.0 or later", 3_309, _CTORTURE,
          strip_prefix="gcc.c-torture", suffix=".c", language="c", flags=_CTORTURE_FLAGS,
          installer="forkgym.datasets.ctorture:install", runnable=True, runnable_prefix="execute/"),
    # --- forkgym's own ---
    Entry("benchmark://forkgym-v0", BUNDLED, "Small C programs shipped with forkgym (crc32, small)",
          "Same as forkgym", 2, suffix=".c", language="c"),
    Entry("benchmark://user-v0", CACHE, "Benchmarks make_benchmark() captured, by content digest",
          "Yours", 0, listed=False),
    Entry("generator://csmith-v0", GENERATOR, "Random conformant C99 programs", "BSD", 0, _CSMITH),
    Entry("generator://llvm-stress-v0", GENERATOR, "Randomly generated LLVM-IR",
          "Apache License v2.0 with LLVM Exceptions", 0, _LLVM_STRESS),
    # --- deprecated aliases: resolve, not listed ---
    Entry("benchmark://anghabench-v0", SOURCE, "Compile-only C/C++ functions extracted from GitHub",
          "Unknown. See: https://github.com/brenocfg/AnghaBench/issues/1", 1_041_333, _ANGHA,
          tarball=_ANGHA_TAR,
          manifest=_cg("llvm_bitcodes-10.0.0-anghabench-v0-linux-manifest.bz2",
                       "a038d25d39ee9472662a9704dfff19c9e3512ff6a70f1067af85c5cb3784b477"),
          strip_prefix=_ANGHA_PREFIX, suffix=".c", language="c", flags=_C_FLAGS,
          deprecated="Please use anghabench-v1"),
    Entry("benchmark://cBench-v1", PREBUILT, "Runnable C benchmarks", "BSD 3-Clause", 23, _CBENCH,
          tarball=_CBENCH_V1_TAR,
          manifest=_cg("llvm_bitcodes-10.0.0-cBench-v1-manifest.bz2",
                       "635b94eeb2784dfedb3b53fd8f84517c3b4b95d851ddb662d4c1058c72dc81e0"),
          strip_prefix="cBench-v1", validatable="Partially", sort_order=100,
          deprecated="Please use 'benchmark://cbench-v1' (note the lowercase name). The dataset is the same, "
                     "only the name has changed"),
    Entry("benchmark://cBench-v0", PREBUILT, "Runnable C benchmarks", "BSD 3-Clause", 23, _CBENCH,
          tarball=_cg("llvm_bitcodes-10.0.0-cBench-v0-linux.tar.bz2",
                      "9b5838a90895579aab3b9375e8eeb3ed2ae58e0ad354fec7eb4f8b31ecb4a360"),
          manifest=_cg("llvm_bitcodes-10.0.0-cBench-v0-manifest.bz2",
                       "635b94eeb2784dfedb3b53fd8f84517c3b4b95d851ddb662d4c1058c72dc81e0"),
          deprecated="Please use 'benchmark://cbench-v1'"),
    Entry("benchmark://mibench-v0", PREBUILT, "C benchmarks", "BSD 3-Clause", 40, _MIBENCH,
          tarball=_cg("llvm_bitcodes-10.0.0-mibench-v0.tar.bz2",
                      "128c090c40b955b99fdf766da167a5f642018fb35c16a1d082f63be2e977eb13"),
          manifest=_MIBENCH_MANIFEST, sort_order=100, deprecated="Please use mibench-v1"),
    Entry("benchmark://poj104-v0", PREBUILT, "Solutions to programming programs", "BSD 3-Clause", 49_816, _POJ104,
          tarball=_cg("llvm_bitcodes-10.0.0-poj104-v0.tar.bz2",
                      "6254d629887f6b51efc1177788b0ce37339d5f3456fb8784415ed3b8c25cce27"),
          manifest=_cg("llvm_bitcodes-10.0.0-poj104-v0-manifest.bz2",
                       "ac3eaaad7d2878d871ed2b5c72a3f39c058ea6694989af5c86cd162414db750b"),
          sort_order=100, deprecated="Please update to benchmark://poj104-v1."),
)


# ------------------------------------------------------------- lookups --

_rows: dict[str, Entry] = {row.name: row for row in CATALOGUE}


def entries() -> tuple[Entry, ...]:
    """Every row in effect, in table order."""
    return tuple(_rows.values())


def find(name: str) -> Entry | None:
    """The row of ``name`` (``benchmark://cbench-v1``; case-sensitive, as CompilerGym's)."""
    return _rows.get(name)


class extended:
    """``with catalogue.extended(rows): ...`` — rows added to (or replacing rows
    of the same name in) the catalogue for the block; e.g. a private mirror's
    datasets, or tests' own datasets served on a loopback address."""

    def __init__(self, rows: "tuple[Entry, ...] | list[Entry]") -> None:
        self._rows = tuple(rows)
        self._saved: dict[str, Entry] = {}

    def __enter__(self) -> "extended":
        global _rows
        self._saved = dict(_rows)
        _rows = {**_rows, **{row.name: row for row in self._rows}}
        return self

    def __exit__(self, *exc: object) -> None:
        global _rows
        _rows = self._saved
