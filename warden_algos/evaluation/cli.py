"""``warden-algos evaluate``: score an algorithm on labelled data, beside reference baselines."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import orjson

from warden_algos.tracking.options import add_mlflow_options

EXIT_USAGE = 2


def add_evaluate_parser(commands: Any) -> None:
    evaluate = commands.add_parser(
        "evaluate",
        help="score an algorithm on a labelled corpus (detectors) or synthetic cases (RCA)",
        description="Score a detector on a labelled corpus in the NAB layout (or one CSV with a "
        "label column) beside the null, random and windowed-Gaussian baselines; or an RCA "
        "algorithm on synthetic dimensional metrics with injected root causes.",
    )
    evaluate.add_argument("--algorithm", required=True, help="registered algorithm name")
    evaluate.add_argument("--params", default="{}", help="parameters as a JSON object")
    evaluate.add_argument(
        "--corpus",
        type=Path,
        help="NAB-layout directory (data/, labels/) or a CSV with timestamp,value,label",
    )
    evaluate.add_argument("--json", type=Path, dest="json_out", help="write the results here")
    evaluate.add_argument(
        "--detections-out", type=Path, help="write detections as CSV (file,timestamp,score)"
    )
    evaluate.add_argument("--plot", type=Path, help="write one PNG per series into this folder")
    evaluate.add_argument(
        "--grid", help="search parameters, e.g. '{\"k\": [3, 4, 5]}' (best by NAB standard)"
    )
    evaluate.add_argument(
        "--cv",
        help="cross-validate the grid: 'categories' (leave one category out) or K (K seeded "
        "folds of files); the setting is chosen on the other folds and scored on each held-out "
        "one, reported beside the in-sample score",
    )
    evaluate.add_argument("--cv-seed", type=int, default=0, help="shuffle seed of --cv K")
    evaluate.add_argument("--jobs", type=int, default=1, help="grid settings run in parallel")
    evaluate.add_argument("--cache-dir", type=Path, help="run cache (default ~/.cache/...)")
    evaluate.add_argument("--no-cache", action="store_true", help="neither read nor write cache")
    evaluate.add_argument(
        "--no-baselines", action="store_true", help="do not run the reference baselines"
    )
    evaluate.add_argument("--per-file", action="store_true", help="also print per-file rows")
    evaluate.add_argument(
        "--range-metrics",
        action="store_true",
        help="also range-aware precision, recall and F1 (Tatbul et al., aeon's implementation: "
        "the 'ranges' extra) per category and overall, in the table and --json",
    )
    add_mlflow_options(evaluate)
    evaluate.add_argument("--cases", type=int, default=300, help="RCA: synthetic cases")
    evaluate.add_argument("--seed", type=int, default=0, help="RCA: generator seed")
    evaluate.add_argument(
        "--rca-cases",
        type=Path,
        default=None,
        metavar="FILE",
        help="RCA: score on the cases of this JSON-lines file instead of generated ones, one "
        '{"request": <RCA request>, "root_causes": [keys]} a line (any generator\'s; see '
        "warden_algos/evaluation/rca_cases.py)",
    )
    evaluate.add_argument(
        "--difficulty",
        choices=["default", "hard", "uneven", "wobble", "noisy"],
        default="default",
        help="RCA: generator setting (see benchmarks/results/rca_synthetic.md)",
    )


def _json_object(text: str, option: str) -> dict[str, Any]:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as error:
        raise SystemExit(_usage(f"{option} is not valid JSON: {error}")) from None
    if not isinstance(value, dict):
        raise SystemExit(_usage(f"{option} must be a JSON object, got {type(value).__name__}"))
    return value


def _usage(message: str) -> int:
    print(f"warden-algos evaluate: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def run_evaluate(args: argparse.Namespace) -> int:
    from warden_algos.interfaces.errors import WardenError  # not at import: `run` builds the parser

    try:
        return _run(args)
    except WardenError as error:  # unknown algorithm, invalid params: one line, no traceback
        return _usage(str(error))


def _run(args: argparse.Namespace) -> int:
    from warden_algos.extras import require
    from warden_algos.registry import Registry, is_rca

    from .baselines import BASELINES

    if args.plot is not None:
        require("evaluate", what="--plot")
    if args.range_metrics:
        require("ranges", what="--range-metrics")
    params = _json_object(args.params, "--params")
    registry = Registry.discover()
    if args.algorithm in registry.entries and is_rca(registry.load(args.algorithm)):
        return _run_rca(args, params)
    if args.algorithm not in registry.entries and args.algorithm not in BASELINES:
        known = ", ".join(registry.names())
        return _usage(f"no algorithm named {args.algorithm!r}; registered: {known}")
    if args.corpus is None:
        return _usage("--corpus is required to evaluate a detector")
    return _run_detector(args, params)


def _run_detector(args: argparse.Namespace, params: dict[str, Any]) -> int:
    import time

    from rich.console import Console

    from .baselines import BASELINES
    from .cache import RunCache
    from .corpus import CorpusError, load_corpus
    from .crossval import CrossValidationError, cross_validate, make_folds, parse_cv
    from .grid import GridError, expand_grid, grid_row, rank_key, shown_search
    from .report import (
        cross_validation_tables,
        evaluation_json,
        evaluation_table,
        print_table,
        write_detections,
    )
    from .runner import evaluate_algorithm

    started = time.time()
    try:
        corpus = load_corpus(args.corpus)
    except (CorpusError, OSError) as error:
        return _usage(str(error))
    folds = None
    if args.cv is not None:
        try:
            scheme = parse_cv(args.cv)
            folds = make_folds(corpus, scheme, args.cv_seed)
        except CrossValidationError as error:
            return _usage(str(error))
    settings: list[dict[str, Any]] | None = None
    if args.grid is not None:
        try:
            settings = expand_grid(params, _json_object(args.grid, "--grid"))
        except GridError as error:
            return _usage(str(error))
        # Validate every setting before spending minutes on the first ones.
        from .runner import resolve_detector

        detector_class = resolve_detector(args.algorithm)
        for setting in settings:
            detector_class.validate_params(setting)
    tracker = None
    if args.mlflow is not None:  # the store must answer before the work starts
        from warden_algos.tracking.client import Tracker, TrackingError

        try:
            tracker = Tracker.connect(args.mlflow, args.mlflow_experiment)
        except TrackingError as error:
            return _usage(str(error))
    cache = None if args.no_cache else RunCache(args.cache_dir)
    stderr = Console(file=sys.stderr)
    grid_rows: list[dict[str, Any]] | None = None
    ranked: list[Any] = []
    if settings is not None:
        in_grid_order = shown_search(
            args.algorithm,
            settings,
            corpus,
            cache=cache,
            jobs=args.jobs,
            label=f"grid {args.algorithm}",
            console=stderr,
        )
        ranked = sorted(in_grid_order, key=rank_key, reverse=True)
        grid_rows = [grid_row(e) for e in ranked]
        _print_grid(ranked, args.algorithm)
        best_params = ranked[0].params
    else:
        best_params = params
        in_grid_order = []
    plots_absent = _plots_absent(args, tracker)
    keep_bands = args.plot is not None or (tracker is not None and plots_absent is None)
    main = evaluate_algorithm(
        args.algorithm, best_params, corpus, cache=cache, keep_bands=keep_bands
    )
    cross = None
    if folds is not None:
        # without a grid there is nothing to choose: the cross-validated score is the in-sample
        cross = cross_validate(in_grid_order or [main], folds, str(args.cv), args.cv_seed)
    baselines = (
        []
        if args.no_baselines
        else [evaluate_algorithm(name, {}, corpus, cache=cache) for name in BASELINES]
    )
    ranges, ranges_absent = _range_scores(args.range_metrics, corpus, [main, *baselines])
    print_table(evaluation_table(main, baselines, ranges), sys.stdout)
    if cross is not None:
        for table in cross_validation_tables(cross, args.algorithm):
            print_table(table, sys.stdout)
    if args.per_file:
        _print_per_file(main)
    for problem in main.errors:
        print(f"warning: {problem}", file=sys.stderr)
    document = None
    if args.json_out is not None or tracker is not None:
        document = evaluation_json(main, baselines, corpus, grid_rows, ranges, ranges_absent)
        if cross is not None:
            document["cross_validation"] = cross.as_dict()
    if args.json_out is not None and document is not None:
        args.json_out.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    if args.detections_out is not None:
        written = write_detections(args.detections_out, corpus, main)
        print(
            f"{written.rows} detections written to {args.detections_out}, "
            f"{written.in_probation} of them in the probationary period (the first 15% of each "
            f"file, at most 750 rows), which NAB does not score: the table counts "
            f"{written.rows - written.in_probation}",
            file=sys.stderr,
        )
    plotted: list[Path] = []
    if args.plot is not None:
        from .plots import plot_evaluation

        plotted = plot_evaluation(args.plot, corpus, main)
        print(f"{len(plotted)} plots written to {args.plot}", file=sys.stderr)
    code = 1 if main.errors else 0
    if tracker is None or document is None:
        return code
    import tempfile

    from warden_algos.tracking.client import TrackingError
    from warden_algos.tracking.evaluation import log_evaluation

    with tempfile.TemporaryDirectory(prefix="warden-mlflow-") as scratch:
        folder = Path(scratch)
        detections = folder / "detections.csv"
        write_detections(detections, corpus, main)
        if not plotted and plots_absent is None:
            from .plots import plot_evaluation

            plotted = plot_evaluation(folder / "plots", corpus, main)
        try:
            run_id = log_evaluation(
                tracker,
                main=main,
                baselines=baselines,
                corpus=corpus,
                ranges=ranges,
                document=document,
                detections=detections,
                plots=plotted,
                plots_absent=plots_absent,
                grid=args.grid,
                ranked=ranked,
                cross=cross,
                cv=args.cv,
                cv_seed=args.cv_seed,
                started=started,
                ok=code == 0,
            )
        except TrackingError as error:
            print(f"warden-algos evaluate: error: {error}", file=sys.stderr)
            return 1
    tracker.announce(run_id, f"evaluate {main.algorithm}")
    return code


def _plots_absent(args: argparse.Namespace, tracker: Any) -> str | None:
    """Why a tracked run gets no plots (None: it gets them): matplotlib is the 'evaluate'
    extra, which ``--plot`` requires but ``--mlflow`` alone does not."""
    from warden_algos.extras import missing

    if tracker is None or args.plot is not None:
        return None
    module = missing("evaluate")
    if module is None:
        return None
    return f"not made: {module} is not installed (pip install 'warden-algos[evaluate]')"


def _range_scores(
    wanted: bool, corpus: Any, evaluations: list[Any]
) -> tuple[list[Any] | None, str | None]:
    """The range scores of each evaluation with ``--range-metrics`` (whose extra ``_run``
    checked up front), else None and why not, for the JSON. Opt-in because aeon's import alone
    (scikit-learn) costs about 2 s, more than a cached re-run of a whole corpus."""
    from . import ranges

    if not wanted:
        return None, ranges.not_asked()
    return [ranges.range_scores(corpus, evaluation) for evaluation in evaluations], None


#: The grid table shows the best settings; ``--json OUT`` has every one.
GRID_ROWS_SHOWN = 15


def _print_grid(ranked: list[Any], algorithm: str) -> None:
    from rich.table import Table

    from .report import _fmt, print_table

    shown = ranked[:GRID_ROWS_SHOWN]
    hidden = len(ranked) - len(shown)
    table = Table(
        title=f"grid {algorithm}: {len(ranked)} settings, best first", title_justify="left"
    )
    if hidden:  # a table that stops early says so, and where the rest is
        table.caption = f"{hidden} lower-ranked settings not shown (all of them: --json OUT)"
    for column in ("rank", "params", "NAB standard", "low_fp", "low_fn", "F1", "detections", "s"):
        table.add_column(column, justify="left" if column == "params" else "right")
    for rank, evaluation in enumerate(shown, start=1):
        nab = evaluation.overall.nab
        table.add_row(
            str(rank),
            orjson.dumps(evaluation.params).decode(),
            _fmt(nab["standard"]),
            _fmt(nab["low_fp"]),
            _fmt(nab["low_fn"]),
            _fmt(evaluation.overall.f1, 2),
            str(evaluation.overall.detections),
            "cached" if evaluation.cached else f"{evaluation.wall_s:.2f}",
            style="bold" if rank == 1 else None,
        )
    print_table(table, sys.stdout)


def _print_per_file(main: Any) -> None:
    from rich.table import Table

    from .report import _fmt, print_table
    from .scoring import aggregate

    table = Table(title="per file", title_justify="left")
    for column in ("file", "windows", "detections", "found", "F1", "NAB standard", "s"):
        table.add_column(column, justify="left" if column == "file" else "right")
    for score, run in zip(main.files, main.runs, strict=True):
        group = aggregate(score.key, [score])
        table.add_row(
            score.key,
            str(group.windows),
            str(group.detections),
            f"{group.windows_found}/{group.windows}",
            _fmt(group.f1, 2),
            _fmt(group.nab["standard"]) if group.windows else f"raw {group.raw['standard']:.2f}",
            f"{run.seconds:.2f}",
        )
    print_table(table, sys.stdout)


def _run_rca(args: argparse.Namespace, params: dict[str, Any]) -> int:
    """RCA has no labelled corpus in the NAB sense: score on synthetic cases with known causes,
    beside every other registered RCA algorithm for context."""
    from rich.table import Table

    from warden_algos.extras import require
    from warden_algos.registry import Registry, is_rca

    require("evaluate", what="evaluating an RCA algorithm (its case generator)")
    from .rca_synthetic import SETTINGS, evaluate_rca, generate_cases
    from .report import print_table

    if args.cases <= 0:
        return _usage("--cases must be > 0")
    if args.mlflow is not None:
        return _usage("--mlflow logs detector evaluations; an RCA evaluation is not tracked")
    registry = Registry.discover()
    main_class = registry.load(args.algorithm)
    main_class.validate_params(params)
    difficulty = SETTINGS[args.difficulty]
    if args.rca_cases is not None:
        from .rca_cases import CaseFileError, read_cases

        try:
            cases = read_cases(args.rca_cases)
        except OSError as error:
            return _usage(f"--rca-cases: {error}")
        except CaseFileError as error:
            return _usage(f"--rca-cases {args.rca_cases}: {error}")
        if not cases:
            return _usage(f"--rca-cases {args.rca_cases}: no case in the file")
        source = f"{len(cases)} cases from {args.rca_cases}"
    else:
        cases = generate_cases(difficulty, args.cases, args.seed)
        source = f"{args.cases} synthetic cases (seed {args.seed})"
    scores = [evaluate_rca(main_class, params, cases)]  # type: ignore[arg-type]
    if not args.no_baselines:
        for name in registry.names():
            other = registry.load(name)
            if name != args.algorithm and is_rca(other):
                scores.append(evaluate_rca(other, {}, cases))  # type: ignore[arg-type]
    table = Table(
        title=f"RCA on {source}",
        title_justify="left",
        caption=None
        if args.rca_cases is not None
        else f"difficulty: {orjson.dumps(difficulty.model_dump()).decode()}",
        caption_justify="left",
    )
    for column in ("algorithm", "top-1", "top-3", "all causes in top-3", "ms/case"):
        table.add_column(column, justify="left" if column == "algorithm" else "right")
    for index, score in enumerate(scores):
        table.add_row(
            score.algorithm,
            f"{score.top1:.3f}",
            f"{score.top3:.3f}",
            f"{score.complete_top3:.3f}",
            f"{score.ms_per_case:.2f}",
            style="bold" if index == 0 else "dim",
        )
    print_table(table, sys.stdout)
    if args.json_out is not None:
        document = {
            "algorithm": args.algorithm,
            "params": scores[0].params,
            "cases": len(cases),
            **(
                {"cases_file": str(args.rca_cases)}
                if args.rca_cases is not None
                else {
                    "seed": args.seed,
                    "difficulty_name": args.difficulty,
                    "difficulty": difficulty.model_dump(),
                }
            ),
            "result": scores[0].model_dump(),
            "others": {s.algorithm: s.model_dump() for s in scores[1:]},
        }
        args.json_out.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    return 0
