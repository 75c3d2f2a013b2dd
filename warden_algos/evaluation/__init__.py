"""The evaluation harness: labelled corpora, NAB-style scoring, baselines, grids, plots, RCA."""
