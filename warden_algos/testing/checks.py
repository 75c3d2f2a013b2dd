"""The named conformance checks: each one rule of the algorithm contract, with its fix.

Each check raises :class:`ConformanceFailure` once, naming every case that broke the rule and
what to change, rather than one line per case: a ``print`` in ``detect`` is one mistake, however
many inputs show it. The checks judge shared observations (see ``observe``), so running them one
by one (one pytest id each) costs one pass over the cases.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from warden_algos.interfaces import (
    Algorithm,
    DetectResult,
    ErrorCode,
    WardenError,
)
from warden_algos.interfaces.base import contract_problems

from .capture import stdout_capture
from .cases import Case, DetectCase, as_request, case_names
from .imports import ImportProbeFailed, measure_import
from .observe import Observation, Result, observe
from .registration import registration_problem

#: The fix printed with a stdout failure (the README says the same).
STDOUT_FIX = (
    "use logging (log = logging.getLogger(__name__); log.info(...)): the SDK writes log records "
    "to stderr as JSON with the request id. stdout carries the protocol; in production a stray "
    "write is diverted to stderr, but it is a bug"
)


class ConformanceFailure(AssertionError):
    """One rule broken: what happened (``problem``) and what to change (``fix``)."""

    def __init__(self, check: str, problem: str, fix: str) -> None:
        super().__init__(f"{check}: {problem}\n    fix: {fix}")
        self.check = check
        self.problem = problem
        self.fix = fix


@dataclass(frozen=True)
class Expectations:
    """What an author declares up front instead of the kit guessing.

    ``expected_refusals``: case name -> why the algorithm refuses it with ``InvalidInput``
    (needed for a *typical* case; strict: a declared refusal that answers fails).
    ``known_failures``: check name -> why it fails for now (strict: one that passes fails, so the
    declaration is removed when the bug is fixed).
    ``registered``: False for a class defined in a test or a notebook, which no entry point
    registers: the registration and import-cost checks then do not apply.
    """

    expected_refusals: Mapping[str, str] = field(default_factory=dict)
    known_failures: Mapping[str, str] = field(default_factory=dict)
    registered: bool = True

    def validate(self, algorithm: Algorithm[Any]) -> None:
        """A typo in a declaration is an error now, not a declaration that never applies."""
        cases = case_names(algorithm.interface)
        unknown_cases = sorted(set(self.expected_refusals) - set(cases))
        if unknown_cases:
            raise ValueError(
                f"expected_refusals names no case: {unknown_cases}; the {algorithm.interface} "
                f"cases are {cases}"
            )
        names = [check.name for check in checks_for(algorithm, self)]
        unknown_checks = sorted(set(self.known_failures) - set(names))
        if unknown_checks:
            raise ValueError(f"known_failures names no check: {unknown_checks}; checks: {names}")


@dataclass(frozen=True)
class Check:
    name: str
    rule: str  # one line, for tables and docs
    run: Callable[[Algorithm[Any], Expectations], None]
    interfaces: tuple[str, ...] = ("detect", "rca")
    needs_registration: bool = False
    #: Starts a fresh Python interpreter: not available inside a frozen executable, which has
    #: none (its own start-up cost is measured by benchmarks/startup.py instead).
    needs_interpreter: bool = False
    #: Only for trainable detectors (and, with needs_causal, only for causal ones).
    needs_trainable: bool = False
    needs_causal: bool = False

    def __call__(self, algorithm: Algorithm[Any], expectations: Expectations) -> None:
        self.run(algorithm, expectations)


def _fail(check: str, problem: str, fix: str) -> ConformanceFailure:
    return ConformanceFailure(check, problem, fix)


def _listed(observations: list[Observation]) -> str:
    return ", ".join(repr(o.case.name) for o in observations)


CONTRACT_FIX = (
    "subclass DetectAlgorithm or RCAAlgorithm, set name (lower_snake_case) and summary (one "
    "line), and give every Params field a default"
)


def class_contract_failure(cls: type) -> ConformanceFailure | None:
    """Checked on the class: a class that breaks it cannot even be instantiated."""
    problems = contract_problems(cls)
    return _fail("check_class_contract", "; ".join(problems), CONTRACT_FIX) if problems else None


def check_class_contract(algorithm: Algorithm[Any], expectations: Expectations) -> None:
    failure = class_contract_failure(type(algorithm))
    if failure is not None:
        raise failure


def check_params_schema(algorithm: Algorithm[Any], expectations: Expectations) -> None:
    name = "check_params_schema"
    fix = (
        "declare Params fields with JSON types (numbers, strings, booleans, lists and enums of "
        "them) and pydantic Field bounds: the schema is published (interfaces/) and params "
        "arrive as JSON"
    )
    try:
        orjson.dumps(type(algorithm).params_schema())
    except Exception as error:
        raise _fail(name, f"the params JSON schema does not serialise: {error}", fix) from None
    try:
        encoded = algorithm.params.model_dump(mode="json")
        again = type(algorithm).validate_params(encoded)
    except (WardenError, ValueError, TypeError) as error:
        raise _fail(name, f"params do not survive a JSON round trip: {error}", fix) from None
    if again != algorithm.params:
        raise _fail(
            name, f"params change in a JSON round trip: {algorithm.params!r} -> {again!r}", fix
        )


def check_registration(algorithm: Algorithm[Any], expectations: Expectations) -> None:
    problem = registration_problem(type(algorithm))
    if problem is not None:
        raise _fail("check_registration", *problem)


def check_import_cost(algorithm: Algorithm[Any], expectations: Expectations) -> None:
    name = "check_import_cost"
    module = type(algorithm).__module__
    try:
        cost = measure_import(module)
    except ImportProbeFailed as error:
        raise _fail(name, str(error), "the module must import on its own") from None
    if cost.heavy:
        where = "; ".join(cost.lines) or f"something {module} imports loads them"
        # the ones the author's lines import (pandas may bring pyarrow along: not theirs to move)
        direct = [
            m for m in cost.heavy if any(line.endswith(f"imports {m}") for line in cost.lines)
        ]
        raise _fail(
            name,
            f"importing {module} loads {', '.join(cost.heavy)} ({cost.milliseconds:.0f} ms): "
            f"{where}",
            f"import {', '.join(direct or cost.heavy)} inside detect/simple_rca (or a helper they "
            "call), "
            "not at module level: `warden-algos list` and every start of the executable import "
            "this module, whichever algorithm is called",
        )


def check_typical_inputs_answered(algorithm: Algorithm[Any], expectations: Expectations) -> None:
    observations = observe(algorithm)
    declared = expectations.expected_refusals
    refused = [
        o
        for o in observations
        if o.case.typical and o.refusal is not None and o.case.name not in declared
    ]
    answered_anyway = [o for o in observations if o.case.name in declared and o.refusal is None]
    if refused:
        detail = "; ".join(f"{o.case.name!r}: {o.refusal}" for o in refused)
        raise _fail(
            "check_typical_inputs_answered",
            f"refused {len(refused)} typical input(s) with InvalidInput: {detail}",
            "answer ordinary data; refuse only what you cannot process. A refusal you mean is "
            "declared: expected_refusals={case name: why}",
        )
    if answered_anyway:
        raise _fail(
            "check_typical_inputs_answered",
            f"declared as refused but not refused: {_listed(answered_anyway)}",
            "remove them from expected_refusals",
        )


def check_no_unexpected_exceptions(algorithm: Algorithm[Any], expectations: Expectations) -> None:
    failed = [o for o in observe(algorithm) if o.error is not None]
    if not failed:
        return
    groups: dict[str, list[Observation]] = {}
    for o in failed:
        groups.setdefault(f"{type(o.error).__name__}: {o.error}", []).append(o)
    detail = "; ".join(f"{error} (on {_listed(group)})" for error, group in groups.items())
    raise _fail(
        "check_no_unexpected_exceptions",
        f"{len(failed)} of {len(observe(algorithm))} inputs raised: {detail}",
        "raise warden_algos.interfaces.InvalidInput('why') for data you cannot process; any "
        "other exception (or a malformed result) answers ALGORITHM_FAILED on the platform",
    )


def _same(a: object, b: object) -> bool:
    if isinstance(a, DetectResult) and isinstance(b, DetectResult):
        pairs = [(getattr(a, f), getattr(b, f)) for f in DetectResult._fields]
        return all(
            (x is None and y is None)
            or (x is not None and y is not None and bool(np.array_equal(x, y, equal_nan=True)))
            for x, y in pairs
        )
    return a == b


def check_deterministic(algorithm: Algorithm[Any], expectations: Expectations) -> None:
    differ = [o for o in observe(algorithm) if o.answered and not _same(o.first, o.second)]
    if differ:
        raise _fail(
            "check_deterministic",
            f"two runs on the same input differ on {_listed(differ)}",
            "seed every random generator from a param (np.random.default_rng(self.params.seed)) "
            "and keep no state between calls: a retried request must get the same answer",
        )


def check_stdout_untouched(algorithm: Algorithm[Any], expectations: Expectations) -> None:
    observations = observe(algorithm)
    wrote = [o for o in observations if o.stdout]
    if wrote:
        raise _fail(
            "check_stdout_untouched",
            f"wrote to stdout on {len(wrote)} of {len(observations)} inputs "
            f"({_listed(wrote)}), e.g. {wrote[0].stdout[:80]!r}",
            STDOUT_FIX,
        )


def _adjacent_detections(case: Case, result: Result | None) -> int:
    """How many detections sit on the input point right after another detection."""
    if not isinstance(case, DetectCase) or not isinstance(result, DetectResult):
        return 0
    index = np.searchsorted(case.timestamps, result.timestamps)
    return int(np.count_nonzero(np.diff(index) == 1))


def check_one_detection_per_incident(algorithm: Algorithm[Any], expectations: Expectations) -> None:
    if getattr(algorithm.params, "every_point", False):
        return  # asked for every flagged point
    crowded = [
        (o, count)
        for o in observe(algorithm)
        if (count := _adjacent_detections(o.case, o.first)) > 0
    ]
    if crowded:
        detail = ", ".join(f"{o.case.name!r} ({n} adjacent)" for o, n in crowded)
        raise _fail(
            "check_one_detection_per_incident",
            f"detections on consecutive points: {detail}. A host pages once per detection",
            "report one detection per run of flagged points: subclass DetectorParams (it adds "
            "every_point) and return DetectResult.from_flags(timestamps, flagged, scores, "
            "every_point=self.params.every_point)",
        )


def _outcome(observation: Observation) -> tuple[str, Result | None]:
    if observation.refusal is not None:
        return ErrorCode.INVALID_INPUT, None
    if observation.error is not None:
        return ErrorCode.ALGORITHM_FAILED, None
    return "ok", observation.first


def check_codec_round_trip(algorithm: Algorithm[Any], expectations: Expectations) -> None:
    """The typical cases through every wire format and the dispatcher give the direct answer."""
    from warden_algos.dispatcher import Dispatcher
    from warden_algos.registry import Registry
    from warden_algos.wire import CODECS, get_codec

    try:  # params JSON cannot carry are check_params_schema's failure, not reported twice
        params = algorithm.params.model_dump(mode="json")
        type(algorithm).validate_params(params)
    except (WardenError, ValueError, TypeError):
        return
    registry = Registry.of([type(algorithm)])
    differ = []
    for observation in observe(algorithm):
        if not observation.case.typical or not _same(observation.first, observation.second):
            continue  # a case that differs between two direct runs is check_deterministic's
        request = as_request(algorithm.name, observation.case, params, "conformance")
        want_code, want = _outcome(observation)
        for format_name in CODECS:
            codec = get_codec(format_name)
            with stdout_capture():  # judged by check_stdout_untouched, not repeated here
                body, _ = Dispatcher(codec, registry=registry).handle(codec.encode_request(request))
            response = codec.decode_response(body)
            code = response.error.code if response.error is not None else "ok"
            if code != want_code or (want is not None and not _same(response.result, want)):
                differ.append(f"{observation.case.name!r} [{format_name}]: {code}")
    if differ:
        raise _fail(
            "check_codec_round_trip",
            "through the wire formats the answer differs from the direct call: "
            + "; ".join(differ),
            "return plain numpy arrays of the input's timestamps with finite float scores (RCA: "
            "float scores keyed by the related metrics' keys)",
        )


def check_explanations(algorithm: Algorithm[Any], expectations: Expectations) -> None:
    """Asked for explanations (``include_explanations``), the algorithm answers the same
    detections, each with an explanation the SDK accepts."""
    from warden_algos.interfaces import DetectAlgorithm, run_detect

    assert isinstance(algorithm, DetectAlgorithm)
    problems = []
    for observation in observe(algorithm):
        case, plain = observation.case, observation.first
        if not isinstance(case, DetectCase) or not isinstance(plain, DetectResult):
            continue
        try:
            explained = run_detect(
                algorithm, case.timestamps, case.values, ["conformance=1"], explain=True
            )
        except Exception as error:  # WardenError included: each one is the finding
            problems.append(f"{case.name!r}: {type(error).__name__}: {error}")
            continue
        deterministic = _same(observation.first, observation.second)  # else its own finding
        if deterministic and (
            not np.array_equal(explained.timestamps, plain.timestamps)
            or not np.array_equal(explained.scores, plain.scores, equal_nan=True)
        ):
            problems.append(f"{case.name!r}: other detections when explanations are asked for")
    if problems:
        raise _fail(
            "check_explanations",
            "; ".join(problems[:3]),
            "when explanations_wanted(), extend the Explanation per detection that from_flags / "
            "from_mask attach (result.explanations, with _replace) rather than replacing them, "
            "and change nothing else (interfaces/CONTRACT.md, 'Explanations', has the bounds)",
        )


def _state_checks() -> tuple[Check, ...]:
    from . import state_checks as state

    return (
        Check(
            "check_state_round_trip",
            "fitted and streamed states come back from their bytes",
            state.check_state_round_trip,
            interfaces=("detect",),
            needs_trainable=True,
        ),
        Check(
            "check_state_deterministic",
            "the same history gives the same state bytes",
            state.check_state_deterministic,
            interfaces=("detect",),
            needs_trainable=True,
        ),
        Check(
            "check_state_bounded",
            "the state does not grow with the history",
            state.check_state_bounded,
            interfaces=("detect",),
            needs_trainable=True,
        ),
        Check(
            "check_streams_like_batch",
            "streaming in chunks finds the batch call's detections",
            state.check_streams_like_batch,
            interfaces=("detect",),
            needs_trainable=True,
            needs_causal=True,
        ),
    )


CHECKS: tuple[Check, ...] = (
    Check("check_class_contract", "name, summary, Params with defaults", check_class_contract),
    Check(
        "check_params_schema", "params schema serialises; params survive JSON", check_params_schema
    ),
    Check(
        "check_registration",
        "an entry point registers the class under its name",
        check_registration,
        needs_registration=True,
    ),
    Check(
        "check_import_cost",
        "importing the module loads no heavy library",
        check_import_cost,
        needs_registration=True,
        needs_interpreter=True,
    ),
    Check(
        "check_typical_inputs_answered",
        "ordinary data is answered, not refused",
        check_typical_inputs_answered,
    ),
    Check(
        "check_no_unexpected_exceptions",
        "every input is answered or refused with InvalidInput",
        check_no_unexpected_exceptions,
    ),
    Check("check_deterministic", "the same input gives the same answer", check_deterministic),
    Check("check_stdout_untouched", "nothing is written to stdout", check_stdout_untouched),
    Check(
        "check_one_detection_per_incident",
        "one detection per run of flagged points unless every_point",
        check_one_detection_per_incident,
        interfaces=("detect",),
    ),
    Check(
        "check_explanations",
        "with explanations asked for: the same detections, each explained",
        check_explanations,
        interfaces=("detect",),
    ),
    Check(
        "check_codec_round_trip",
        "JSON and Thrift through the dispatcher give the direct answer",
        check_codec_round_trip,
    ),
    *_state_checks(),
)


def checks_for(algorithm: Algorithm[Any], expectations: Expectations) -> list[Check]:
    """The checks that apply to this algorithm's interface and declared registration."""
    from warden_algos.interfaces.trainable import TrainableDetector

    trainable = isinstance(algorithm, TrainableDetector)
    causal = trainable and bool(getattr(algorithm, "causal", True))
    return [
        check
        for check in CHECKS
        if algorithm.interface in check.interfaces
        and (expectations.registered or not check.needs_registration)
        and not (check.needs_interpreter and getattr(sys, "frozen", False))
        and (trainable or not check.needs_trainable)
        and (causal or not check.needs_causal)
    ]
