"""Reproducible research sweeps: a grid of configs times seeds, run to completion across restarts
(jaxgen.sweep.runner), collected into one table with error bars and plots (jaxgen.sweep.report).
The command line: `python -m jaxgen.sweep --help`; docs/sweeps.md."""
