"""The abstract base classes an algorithm author subclasses.

Modelled on scikit-learn's estimator contract: parameters are declared up front (here as a pydantic
``Params`` model with defaults, bounds and descriptions), construction validates them and does no
other work, and there is one vocabulary for every algorithm (``detect`` or ``simple_rca``). The
registry constructs a fresh instance per request, so instance state never outlives a request.

Never import heavy libraries (pandas, scipy, prophet, ...) at module level in an algorithm module:
import them inside ``detect``/``simple_rca``. Listing and describing algorithms imports every
algorithm module, and a light algorithm's one-shot start-up must not pay for a heavy neighbour.
"""

from __future__ import annotations

import inspect
import re
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, ClassVar, Generic, Literal, Self, TypeVar, get_args, get_origin

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .alerting_params import AlertingParams
from .budget import InputShape, WorkEstimate
from .errors import InvalidParams
from .types import DetectResult, F64Array, I64Array, TimeSeries

Interface = Literal["detect", "rca"]
ALGORITHM_NAME = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")


class AlgorithmParams(BaseModel):
    """Base for an algorithm's ``Params``: unknown keys are errors (a typo must not pass silently)
    and a validated instance is immutable, so it can be shared and hashed."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class DetectorParams(AlgorithmParams):
    """Base for a detector's ``Params``: the reporting switch every built-in detector shares.

    An incident is a run of consecutive flagged points; a host pages once per incident, and a
    scorer such as NAB's counts only the first detection in a window, so one detection per run
    (at its first point, scored by the run's highest score) is the default.
    """

    every_point: bool = Field(
        False,
        description="Report every flagged point instead of one detection at the start of each "
        "run of consecutive flagged points.",
    )
    alerting: AlertingParams | None = Field(
        None,
        description="Let the SDK decide the alerts: scores calibrated to one scale, one "
        "sensitivity, minimum duration, cool-down and re-baselining after a level shift "
        "(off when absent).",
    )

    @model_validator(mode="after")
    def _one_way_of_reporting(self) -> DetectorParams:
        if self.alerting is not None and self.every_point:
            raise ValueError(
                "alerting reports one alert per incident: every_point cannot be combined with it"
            )
        return self


class NoParams(AlgorithmParams):
    """For algorithms that take no parameters."""


P = TypeVar("P", bound=BaseModel)


def _params_from_generic(cls: type) -> type[BaseModel] | None:
    for base in getattr(cls, "__orig_bases__", ()):
        origin = get_origin(base)
        if isinstance(origin, type) and issubclass(origin, Algorithm):
            for arg in get_args(base):
                if isinstance(arg, type) and issubclass(arg, BaseModel):
                    return arg
    return None


#: Validated frozen params by (algorithm class, their JSON text): at most this many kept.
VALIDATED_PARAMS_KEPT = 256
_validated_params: OrderedDict[tuple[type, bytes], Any] = OrderedDict()


def _validated_json(cls: type[Algorithm[Any]], encoded: bytes, raw: Mapping[str, Any]) -> Any:
    """``cls._validated`` of params that have a JSON text, remembered when ``cls.Params`` is
    frozen (a shared instance cannot change under another request). Refused params are never
    remembered: each request that sends them gets the error."""
    key = (cls, encoded)
    found = _validated_params.get(key)
    if found is not None:
        _validated_params.move_to_end(key)
        return found
    params = cls._validated(raw, encoded)
    if cls.Params.model_config.get("frozen"):
        _validated_params[key] = params
        if len(_validated_params) > VALIDATED_PARAMS_KEPT:
            _validated_params.popitem(last=False)
    return params


def _format_validation_error(error: ValidationError) -> tuple[str, str]:
    """(field of the first problem, one message listing all problems)."""
    problems = []
    first_field = "params"
    for index, item in enumerate(error.errors(include_url=False)):
        loc = ".".join(str(part) for part in item["loc"])
        field = f"params.{loc}" if loc else "params"
        if index == 0:
            first_field = field
        problems.append(f"{field}: {item['msg']}")
    return first_field, "; ".join(problems)


class Algorithm(ABC, Generic[P]):
    """What detect and RCA algorithms share: a name, a summary, and validated parameters."""

    #: Registered name, lower_snake_case, unique across interfaces.
    name: ClassVar[str]
    #: One line for ``warden-algos list``.
    summary: ClassVar[str]
    #: Set by the two interface base classes.
    interface: ClassVar[Interface]
    #: The parameter model. Inferred from ``DetectAlgorithm[MyParams]`` when not set explicitly.
    Params: ClassVar[type[BaseModel]] = NoParams

    params: P

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "Params" not in cls.__dict__:
            inferred = _params_from_generic(cls)
            if inferred is not None:
                cls.Params = inferred

    def __init__(self, params: P | Mapping[str, Any] | None = None, /, **overrides: Any) -> None:
        """``Algo()`` takes the defaults; ``Algo(window=30)`` or ``Algo({"window": 30})`` override.

        Raises ``InvalidParams`` naming the offending field.
        """
        if isinstance(params, BaseModel) and not overrides:
            if not isinstance(params, self.Params):
                raise InvalidParams(
                    f"{type(self).__name__} takes {self.Params.__name__}, "
                    f"got {type(params).__name__}",
                    field="params",
                )
            self.params = params
            return
        raw: dict[str, Any] = {}
        if isinstance(params, BaseModel):
            raw.update(params.model_dump())
        elif params is not None:
            raw.update(params)
        raw.update(overrides)
        self.params = self.validate_params(raw)

    @classmethod
    def validate_params(cls, raw: Mapping[str, Any]) -> Any:
        """``raw`` as this algorithm's ``Params``, or ``InvalidParams`` naming the field. Params
        that arrive as JSON are validated once per distinct text and class (a stream sends the
        same params with every point): validated params are frozen, so the instance is shared."""
        if not isinstance(raw, Mapping):
            raise InvalidParams(f"must be an object, got {type(raw).__name__}", field="params")
        try:
            encoded: bytes | None = orjson.dumps(dict(raw), option=orjson.OPT_SERIALIZE_NUMPY)
        except TypeError:  # not JSON-representable (a Python object): validate as Python
            encoded = None
        if encoded is None:
            return cls._validated(raw, None)
        return _validated_json(cls, encoded, raw)

    @classmethod
    def _validated(cls, raw: Mapping[str, Any], encoded: bytes | None) -> Any:
        known = set()
        for field_name, info in cls.Params.model_fields.items():
            known.add(field_name)
            if info.alias:
                known.add(info.alias)
        unknown = sorted(str(key) for key in raw if key not in known)
        if unknown:
            raise InvalidParams(
                f"unknown parameter(s) {', '.join(unknown)} for {cls.name}; "
                f"known: {', '.join(sorted(cls.Params.model_fields)) or 'none'}",
                field=f"params.{unknown[0]}",
            )
        try:
            # JSON-mode strict validation, whatever the caller: "60" is not a window, but an
            # enum's string value is that enum, exactly as when the params arrive on the wire.
            if encoded is None:
                return cls.Params.model_validate(dict(raw))
            return cls.Params.model_validate_json(encoded, strict=True)
        except ValidationError as error:
            field, message = _format_validation_error(error)
            raise InvalidParams(message, field=field) from None

    @classmethod
    def from_params(cls, raw: Mapping[str, Any]) -> Self:
        return cls(cls.validate_params(raw))

    def get_params(self) -> dict[str, Any]:
        return self.params.model_dump()

    def estimate(self, shape: InputShape) -> WorkEstimate:
        """Peak memory and operations this algorithm needs for an input of ``shape``, from the
        params and the counts alone: checked against the request budget before it runs (see
        ``budget``). The default is a vectorised numpy algorithm's: linear in the points, a few
        float64 arrays of them. Override it when work grows faster in a parameter (a window
        per point, anomaly times x seasons); err high, never low."""
        return WorkEstimate(peak_bytes=64 * shape.points, operations=4 * shape.points)

    @classmethod
    def description(cls) -> str:
        """The long "when to use it" text shown by ``describe``: the class docstring."""
        return inspect.cleandoc(cls.__doc__ or "")

    @classmethod
    def params_schema(cls) -> dict[str, Any]:
        return cls.Params.model_json_schema()

    def __repr__(self) -> str:
        defaults = {
            name: info.get_default(call_default_factory=True)
            for name, info in self.Params.model_fields.items()
        }
        shown = ", ".join(
            f"{key}={value!r}"
            for key, value in self.get_params().items()
            if key not in defaults or defaults[key] != value
        )
        return f"{type(self).__name__}({shown})"


class DetectAlgorithm(Algorithm[P], ABC):
    """Finds anomalous points in one series.

    ``detect`` receives ``dimensions`` (``["host=web-1", ...]``), ``timestamps`` (int64 Unix
    seconds,
    strictly increasing) and ``values`` (float64, NaN = missing), all read-only, and returns a
    :class:`DetectResult`. It reads its parameters from ``self.params``.
    """

    interface: ClassVar[Interface] = "detect"

    @abstractmethod
    def detect(self, dimensions: list[str], timestamps: I64Array, values: F64Array) -> DetectResult:
        raise NotImplementedError


class RCAAlgorithm(Algorithm[P], ABC):
    """Ranks related metrics by how much they explain anomalies of a metric of interest.

    ``simple_rca`` returns ``{related metric key: contribution score}``; the SDK keeps the ``k``
    highest. ``params`` is the validated parameter model (the same object as ``self.params``).
    """

    interface: ClassVar[Interface] = "rca"

    @abstractmethod
    def simple_rca(
        self,
        metric_of_interest: TimeSeries,
        related_metrics: list[TimeSeries],
        k: int,
        anomalies: I64Array,
        params: P,
    ) -> Mapping[str, float]:
        raise NotImplementedError


def contract_problems(cls: object) -> list[str]:
    """Why ``cls`` cannot be registered as an algorithm (empty when it can).

    The registry runs this at load time so a broken plugin is reported by name, before any request.
    """
    if not isinstance(cls, type):
        return [f"{cls!r} is not a class"]
    if not issubclass(cls, DetectAlgorithm | RCAAlgorithm):
        return [f"{cls.__qualname__} subclasses neither DetectAlgorithm nor RCAAlgorithm"]
    problems = []
    if inspect.isabstract(cls):
        missing = ", ".join(sorted(getattr(cls, "__abstractmethods__", ())))
        problems.append(f"{cls.__qualname__} does not implement {missing}")
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not ALGORITHM_NAME.match(name):
        problems.append(f"{cls.__qualname__}.name must be lower_snake_case text, got {name!r}")
    summary = getattr(cls, "summary", None)
    if not isinstance(summary, str) or not summary.strip() or "\n" in summary.strip():
        problems.append(f"{cls.__qualname__}.summary must be one non-empty line")
    params = getattr(cls, "Params", None)
    if not (isinstance(params, type) and issubclass(params, BaseModel)):
        problems.append(f"{cls.__qualname__}.Params must be a pydantic BaseModel subclass")
    else:
        try:
            params.model_validate({})
        except ValidationError:
            problems.append(
                f"{cls.__qualname__}.Params must have a default for every field, so that "
                "an empty params object is valid"
            )
    return problems
