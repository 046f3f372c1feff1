"""Benchmarks: each script prints its figures and ratios against a baseline of the same run.

Run a script as ``.venv/bin/python bench/NAME.py``: l4mon and the shared harness (``testing``:
broker, blaster, peak memory) come from the installed project, or from the tree named by
``PYTHONPATH`` in an A/B run. Python puts a script's own folder on ``sys.path``, so a script
that uses another one imports it by its bare name (``from report import generate``); tests
import the scripts they exercise as ``bench.NAME``.
"""
