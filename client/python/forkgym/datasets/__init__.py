"""Datasets: CompilerGym's catalogue and datasets API.

    import forkgym
    env = forkgym.make("llvm-ic-v0")
    for dataset in env.datasets:                       # the catalogue, in CompilerGym's order
        print(dataset.name, dataset.size, dataset.installed)
    env.reset(benchmark="cbench-v1/qsort")            # installs cbench-v1 on first use
    benchmark = env.datasets["anghabench-v1"].random_benchmark(np.random.default_rng(0))
    mine = forkgym.datasets.from_directory("mine-v0", "/abs/dir/of/sources")

Modules: ``catalogue`` (every dataset, one row each), ``dataset`` (Dataset,
Datasets, user datasets), ``benchmark`` (Benchmark, BenchmarkUri), ``fetch``
(downloads and installs), ``manifest`` (lazy benchmark lists), ``paths``
(site-data and cache directories).
"""

from forkgym.datasets.benchmark import Benchmark, BenchmarkSource, BenchmarkUri
from forkgym.datasets.dataset import (
    BundledDataset,
    CacheDataset,
    Dataset,
    Datasets,
    GeneratorDataset,
    ManifestDataset,
    UserDataset,
    default_datasets,
    ensure_installed,
    from_directory,
)

__all__ = [
    "Benchmark",
    "BenchmarkSource",
    "BenchmarkUri",
    "BundledDataset",
    "CacheDataset",
    "Dataset",
    "Datasets",
    "GeneratorDataset",
    "ManifestDataset",
    "UserDataset",
    "default_datasets",
    "ensure_installed",
    "from_directory",
]
