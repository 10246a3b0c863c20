"""Datasets: CompilerGym's catalogue and datasets API (downloads in ``fetch``, directories in ``paths``)."""
