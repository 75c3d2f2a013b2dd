"""The JSON form of the envelope: orjson for bytes, pydantic for the schema.

Numeric arrays travel either as JSON lists (``null`` for a missing value) or, for large series, as
``{"dtype": "float64"|"int64", "base64": "<little-endian bytes>"}``, which decodes at memory speed
instead of number-parsing speed. A request that sets ``"packed_arrays": true`` gets its response
arrays packed the same way. The pydantic models below are the schema (``warden-algos schema``
prints it); they check types strictly (no strings or booleans where numbers belong) and the
errors name the field and index.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any, Literal

import numpy as np
import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Strict,
    Tag,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from warden_algos.interfaces import (
    DetectResult,
    ErrorCode,
    F64Array,
    I64Array,
    InvalidInput,
    RCAResult,
    TimeSeries,
)
from warden_algos.interfaces.budget import current_budget
from warden_algos.interfaces.graph import MAX_EDGES, check_edge_count
from warden_algos.interfaces.multivariate import MultivariateResult

from .duplicates import check_no_duplicate_keys
from .envelope import (
    DetectPayload,
    ErrorInfo,
    FitPayload,
    FitResult,
    RCAPayload,
    Request,
    Response,
)
from .explanations import from_fields, to_fields
from .matrices import from_flat, from_rows

_DUMP_OPTIONS = orjson.OPT_SERIALIZE_NUMPY
_PACKED_DTYPES = {"float64": np.dtype("<f8"), "int64": np.dtype("<i8")}


class PackedArray(BaseModel):
    """A numeric array as base64 of its little-endian bytes."""

    model_config = ConfigDict(extra="forbid", strict=True, defer_build=True)
    dtype: Literal["float64", "int64"]
    base64: str


def _unpack(packed: PackedArray, expected: str) -> np.ndarray[Any, Any]:
    if packed.dtype != expected:
        raise PydanticCustomError(
            "packed_dtype",
            "packed array has dtype {got}, expected {want}",
            {"got": packed.dtype, "want": expected},
        )
    try:
        raw = base64.b64decode(packed.base64, validate=True)
    except (binascii.Error, ValueError) as error:
        raise PydanticCustomError(
            "packed_base64", "invalid base64: {error}", {"error": str(error)}
        ) from None
    if len(raw) % 8:
        raise PydanticCustomError(
            "packed_length",
            "packed array of {size} bytes is not a whole number of 8-byte items",
            {"size": len(raw)},
        )
    return np.frombuffer(raw, dtype=_PACKED_DTYPES[expected]).astype(expected, copy=False)


def _to_f64(value: list[float | None] | PackedArray) -> F64Array:
    if isinstance(value, PackedArray):
        return _unpack(value, "float64")
    try:
        return np.fromiter(value, np.float64, len(value))  # a third faster than np.array
    except TypeError:  # a None (missing value) in the list
        return np.array(value, dtype=np.float64)  # None -> NaN


def _to_i64(value: list[int] | PackedArray) -> I64Array:
    if isinstance(value, PackedArray):
        return _unpack(value, "int64")
    try:
        return np.fromiter(value, np.int64, len(value))
    except OverflowError:
        bad = next(i for i, item in enumerate(value) if not -(2**63) <= item < 2**63)
        raise PydanticCustomError(
            "int64_range",
            "element {index} ({value}) does not fit in a signed 64-bit integer",
            {"index": bad, "value": value[bad]},
        ) from None


def _array_kind(value: Any) -> str:
    return "packed" if isinstance(value, dict | PackedArray) else "list"


F64Wire = Annotated[
    Annotated[list[Annotated[float, Strict()] | None], Tag("list")]
    | Annotated[PackedArray, Tag("packed")],
    Discriminator(_array_kind),
    AfterValidator(_to_f64),
]
I64Wire = Annotated[
    Annotated[list[Annotated[int, Strict()]], Tag("list")] | Annotated[PackedArray, Tag("packed")],
    Discriminator(_array_kind),
    AfterValidator(_to_i64),
]
_TAGS = {"list", "packed"}

#: A matrix: rows of numbers (null = missing), or packed (rows x columns float64, row-major).
#: Shaped in decode_request, where the column count is known.
MatrixWire = Annotated[
    Annotated[list[list[Annotated[float, Strict()] | None]], Tag("list")]
    | Annotated[PackedArray, Tag("packed")],
    Discriminator(_array_kind),
]
ColumnsWire = list[Annotated[str, Strict()]]


def _values_or_matrix(payload: Any) -> None:
    """A detect or fit payload gives values, or columns with a matrix: exactly one of them."""
    has_values, has_matrix = payload.values is not None, payload.matrix is not None
    if has_values == has_matrix:
        raise PydanticCustomError(
            "values_or_matrix",
            "give values (one series) or columns and matrix (several), exactly one of them",
            {},
        )
    if has_matrix != (payload.columns is not None):
        raise PydanticCustomError(
            "columns_with_matrix", "a matrix needs its columns, and columns need a matrix", {}
        )


def _matrix(value: Any, columns: list[str], path: str) -> F64Array:
    """The wire matrix as rows x len(columns) float64."""
    width = len(columns)
    if isinstance(value, PackedArray):
        try:
            flat = _unpack(value, "float64")
        except PydanticCustomError as error:
            raise InvalidInput(str(error), field=path) from None
        return from_flat(flat, width, path)
    return from_rows(value, width, path)


def _input_out(payload: Any, packed: bool) -> dict[str, Any]:
    """A detect or fit payload's series: its values, or its columns and matrix."""
    if payload.matrix is None:
        return {"values": _array_out(payload.values, packed)}
    return {"columns": list(payload.columns), "matrix": _matrix_out(payload.matrix, packed)}


def _width_of(matrix: Any, rows: int) -> int:
    """Columns of a response matrix of ``rows`` rows (its width is not sent alongside)."""
    if isinstance(matrix, PackedArray):
        cells = len(base64.b64decode(matrix.base64)) // 8
        return cells // rows if rows else 0
    return len(matrix[0]) if matrix else 0


def _matrix_out(matrix: np.ndarray[Any, Any], packed: bool) -> Any:
    cells = np.ascontiguousarray(matrix, dtype=np.float64)
    if packed:
        return _array_out(cells.reshape(-1), True)
    return cells


def _state_bytes(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as error:
        raise PydanticCustomError(
            "state_base64", "the state is not valid base64: {error}", {"error": str(error)}
        ) from None


#: A state travels as the base64 of its bytes.
StateWire = Annotated[str, AfterValidator(_state_bytes)]
SHA256_HEX = r"^[0-9a-f]{64}$"


class _Wire(BaseModel):
    # Built on first use, not at import: a server never builds the response-side models, and
    # every one-shot run pays for what it builds. Empty defaults are written `default={}`, not
    # `default_factory=dict`: pydantic copies mutable defaults anyway, and a builtin factory makes
    # it parse the builtin's text signature (tokenize, regexes) on first build, ~12 ms a process.
    model_config = ConfigDict(
        extra="forbid", strict=True, arbitrary_types_allowed=True, defer_build=True
    )


class WireTimeSeries(_Wire):
    dimensions: dict[str, str] = Field(default={})
    times: I64Wire
    values: F64Wire
    sizes: I64Wire | None = None
    variances: F64Wire | None = None


class WireDetect(_Wire):
    dimensions: list[str] = Field(default=[])
    timestamps: I64Wire
    values: F64Wire | None = None
    columns: ColumnsWire | None = Field(
        default=None,
        description="Multivariate, instead of values: the matrix's column names, in order.",
    )
    matrix: MatrixWire | None = Field(
        default=None,
        description="Multivariate: a row of values per timestamp, one per column (null = "
        "missing), or packed (rows x columns float64, row-major).",
    )
    state: StateWire | None = Field(
        default=None,
        description="A trained state (base64), as a fit or an earlier detect returned it: only "
        "points after the ones it has seen are given.",
    )
    state_sha256: str | None = Field(
        default=None,
        pattern=SHA256_HEX,
        description="Instead of state: the sha256 of a state this serve process was sent or "
        "returned (STATE_NOT_FOUND if it no longer holds it: resend the state).",
    )
    model: str | None = Field(
        default=None,
        min_length=1,
        max_length=1024,
        description="Instead of state: the stored model of this series key (--models-dir).",
    )
    return_state: bool = Field(default=False, description="Answer the state after these points.")
    return_state_sha256_only: bool = Field(
        default=False,
        description="With return_state, to a serve process: keep the new state there and answer "
        "only its state_sha256 (after a STATE_NOT_FOUND, resend the last state you hold with "
        "every point since).",
    )

    @model_validator(mode="after")
    def _one_state(self) -> WireDetect:
        _values_or_matrix(self)
        given = [
            name for name in ("state", "state_sha256", "model") if getattr(self, name) is not None
        ]
        if len(given) > 1:
            raise PydanticCustomError(
                "state_twice",
                "give one of state, state_sha256 and model, not {given}",
                {"given": " and ".join(given)},
            )
        if self.return_state_sha256_only and not self.return_state:
            raise PydanticCustomError(
                "sha256_only", "return_state_sha256_only needs return_state", {}
            )
        if self.return_state and not given:
            raise PydanticCustomError(
                "no_state",
                "return_state needs a state (state, state_sha256 or model): a first "
                "state comes from a fit request",
                {},
            )
        return self


class WireFit(_Wire):
    dimensions: list[str] = Field(default=[])
    timestamps: I64Wire
    values: F64Wire | None = None
    columns: ColumnsWire | None = None
    matrix: MatrixWire | None = None

    @model_validator(mode="after")
    def _one_input(self) -> WireFit:
        _values_or_matrix(self)
        return self


def _edge_count(edges: Any) -> Any:
    """Count a graph's edges before pydantic validates, and builds, a single one of them."""
    if isinstance(edges, list):
        try:
            check_edge_count(len(edges))
        except InvalidInput as error:
            raise PydanticCustomError("too_many_edges", error.message, {}) from None
    return edges


class WireGraphEdge(_Wire):
    """One dependency: a change of the parent propagates to the child."""

    parent: str = Field(
        description="The cause side: the key (rendered dimensions) of the metric of interest or "
        "of a related metric."
    )
    child: str = Field(description="The metric the parent's change propagates to: a key too.")


#: A dependency graph: counted first (at most MAX_EDGES), then each edge validated.
GraphWire = Annotated[
    list[WireGraphEdge], Field(max_length=MAX_EDGES), BeforeValidator(_edge_count)
]


class WireRCA(_Wire):
    metric_of_interest: WireTimeSeries
    related_metrics: list[WireTimeSeries]
    k: int = Field(ge=1, description="How many contributions to return at most.")
    anomalies: I64Wire = Field(default=[], description="Anomalous times of the metric of interest.")
    graph: GraphWire | None = Field(
        default=None,
        description="How the metrics depend on each other, if known: edges from a parent to a "
        "child, both keys of the metric of interest or of related metrics, acyclic; an RCA "
        "algorithm may use it (one that does not ignores it).",
    )


class WireRequest(_Wire):
    """A request: name the interface and algorithm, give params and the interface's payload."""

    interface: Literal["detect", "rca", "fit"]
    algorithm: str = Field(min_length=1, max_length=200)
    params: dict[str, Any] = Field(default={})
    request_id: str | None = Field(default=None, max_length=512)
    include_band: bool = True
    packed_arrays: bool = False
    include_explanations: bool = Field(
        default=False,
        description="Answer one explanation per detection (detect.explanations): off by "
        "default, so the hot path does not pay for it.",
    )
    detect: WireDetect | None = None
    rca: WireRCA | None = None
    fit: WireFit | None = None

    @model_validator(mode="after")
    def _payload_matches_interface(self) -> WireRequest:
        present = [name for name in ("detect", "rca", "fit") if getattr(self, name) is not None]
        if present != [self.interface]:
            raise PydanticCustomError(
                "payload_mismatch",
                # pydantic fills {name} placeholders with str(value): no format specs here
                "interface '{interface}' needs exactly one payload object, '{interface}'; got: "
                "{present}",
                {"interface": self.interface, "present": ", ".join(present) or "none"},
            )
        return self


def _field_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part not in _TAGS:
            path += f".{part}" if path else part
    return path


def _invalid_input(error: ValidationError, request_id: str | None) -> InvalidInput:
    items = error.errors(include_url=False, include_input=False)
    problems = []
    for item in items[:5]:
        path = _field_path(item["loc"])
        problems.append(f"{path}: {item['msg']}" if path else item["msg"])
    if len(items) > 5:
        problems.append(f"and {len(items) - 5} more problems")
    failure = InvalidInput("; ".join(problems), field=_field_path(items[0]["loc"]) or None)
    failure.request_id = request_id
    return failure


def _series(wire: WireTimeSeries) -> TimeSeries:
    return TimeSeries(
        dimensions=wire.dimensions,
        times=wire.times,  # type: ignore[arg-type]  # converted by the AfterValidator
        values=wire.values,  # type: ignore[arg-type]
        sizes=wire.sizes,  # type: ignore[arg-type]
        variances=wire.variances,  # type: ignore[arg-type]
    )


def _array_out(array: np.ndarray[Any, Any], packed: bool) -> Any:
    if packed:
        little = array.astype(array.dtype.newbyteorder("<"), copy=False)
        return {"dtype": array.dtype.name, "base64": base64.b64encode(little.tobytes()).decode()}
    return np.ascontiguousarray(array)


def _series_out(series: TimeSeries, packed: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "dimensions": series.dimensions,
        "times": _array_out(series.times, packed),
        "values": _array_out(series.values, packed),
    }
    if series.sizes is not None:
        out["sizes"] = _array_out(series.sizes, packed)
    if series.variances is not None:
        out["variances"] = _array_out(series.variances, packed)
    return out


#: What decoding costs per JSON value (a Python object and its list slot, then its numpy cell)
#: and per JSON object (a dict, then a validated model, a TimeSeries and its arrays), measured:
#: 120 MiB of "0," peaked at 3.5 GB (about 55 B per value); 4.1 million tiny related metrics at
#: 5.9 GB (about 1.4 KB per metric).
BYTES_PER_VALUE = 60
BYTES_PER_OBJECT = 1_500


def check_decode_budget(data: bytes | bytearray) -> None:
    """Refuse, before parsing, a request whose decoded form would exceed the memory budget.

    The byte limit alone does not bound it: a JSON value can be two bytes on the wire and fifty
    in memory. Counting commas (at least values - 1) and braces (objects) is a plain byte scan
    (~0.5 ms per MiB), so the estimate is known before orjson allocates anything."""
    budget = current_budget().peak_bytes
    # Every value takes at least 2 bytes with its comma and every object 2 ("{}"): a request
    # whose every byte pair were the dearer of the two still fits, so no scan is needed (all
    # requests under ~2.7 MiB at the default budget).
    if budget is None or len(data) // 2 * (BYTES_PER_VALUE + BYTES_PER_OBJECT) <= budget:
        return
    raw = np.frombuffer(data, dtype=np.uint8)  # compares run vectorised: ~2x bytes.count
    values = int(np.count_nonzero(raw == ord(","))) + 1
    objects = int(np.count_nonzero(raw == ord("{")))
    needed = BYTES_PER_VALUE * values + BYTES_PER_OBJECT * objects
    if needed > budget:
        raise InvalidInput(
            f"decoding this request would take about {needed / (1 << 20):,.0f} MiB (up to "
            f"{values:,} values in {objects:,} objects), over the per-request budget of "
            f"{budget / (1 << 20):,.0f} MiB (WARDEN_MAX_REQUEST_MB): send fewer points or "
            "series per request, or packed arrays"
        )


def _values(values: Any) -> F64Array:
    """A payload's values (converted by their validator), empty when it carries a matrix."""
    return np.empty(0) if values is None else values


def _matrix_fields(wire: Any, path: str, request_id: str | None) -> dict[str, Any]:
    if wire.matrix is None:
        return {}
    try:
        return {"columns": list(wire.columns), "matrix": _matrix(wire.matrix, wire.columns, path)}
    except InvalidInput as error:
        error.request_id = request_id
        raise


def _edges(graph: list[WireGraphEdge] | None) -> list[tuple[str, str]] | None:
    """The payload's (parent, child) pairs; checked against the metrics by ``run_rca``."""
    return None if graph is None else [(edge.parent, edge.child) for edge in graph]


def _graph_out(graph: list[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"parent": parent, "child": child} for parent, child in graph]


class JsonCodec:
    name = "json"

    def decode_request(self, data: bytes | bytearray) -> Request:
        check_decode_budget(data)
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError as error:
            raise InvalidInput(f"request is not valid JSON: {error}") from None
        if not isinstance(obj, dict):
            raise InvalidInput(f"request must be a JSON object, got {type(obj).__name__}")
        request_id = obj.get("request_id")
        request_id = request_id if isinstance(request_id, str) else None
        try:
            check_no_duplicate_keys(data, obj)
        except InvalidInput as error:
            if error.field != "request_id":  # which of its values would be the right one?
                error.request_id = request_id
            raise
        try:
            wire = WireRequest.model_validate(obj)
        except ValidationError as error:
            raise _invalid_input(error, request_id) from None
        payload: DetectPayload | RCAPayload | FitPayload
        if wire.detect is not None:
            payload = DetectPayload(
                dimensions=wire.detect.dimensions,
                timestamps=wire.detect.timestamps,  # type: ignore[arg-type]
                values=_values(wire.detect.values),
                state=wire.detect.state,  # type: ignore[arg-type]  # bytes, by the validator
                state_sha256=wire.detect.state_sha256,
                model=wire.detect.model,
                return_state=wire.detect.return_state,
                return_state_sha256_only=wire.detect.return_state_sha256_only,
                **_matrix_fields(wire.detect, "detect.matrix", request_id),
            )
        elif wire.fit is not None:
            payload = FitPayload(
                dimensions=wire.fit.dimensions,
                timestamps=wire.fit.timestamps,  # type: ignore[arg-type]
                values=_values(wire.fit.values),
                **_matrix_fields(wire.fit, "fit.matrix", request_id),
            )
        else:
            assert wire.rca is not None  # guaranteed by _payload_matches_interface
            payload = RCAPayload(
                metric_of_interest=_series(wire.rca.metric_of_interest),
                related_metrics=[_series(series) for series in wire.rca.related_metrics],
                k=wire.rca.k,
                anomalies=wire.rca.anomalies,  # type: ignore[arg-type]
                graph=_edges(wire.rca.graph),
            )
        return Request(
            interface=wire.interface,
            algorithm=wire.algorithm,
            payload=payload,
            params=wire.params,
            request_id=wire.request_id,
            include_band=wire.include_band,
            packed_arrays=wire.packed_arrays,
            include_explanations=wire.include_explanations,
        )

    def encode_response(self, response: Response) -> bytes:
        out: dict[str, Any] = {
            "status": "ok" if response.ok else "error",
            "request_id": response.request_id,
        }
        packed = response.packed_arrays
        if response.error is not None:
            error: dict[str, Any] = {
                "code": response.error.code.value,
                "message": response.error.message,
            }
            if response.error.field is not None:
                error["field"] = response.error.field
            out["error"] = error
        elif isinstance(response.result, MultivariateResult):
            found = response.result
            multi: dict[str, Any] = {
                "timestamps": _array_out(found.timestamps, packed),
                "scores": _array_out(found.scores, packed),
                "contributions": _matrix_out(found.contributions, packed),
            }
            if found.expected is not None:
                multi["expected_matrix"] = _matrix_out(found.expected, packed)
            if found.explanations is not None:
                multi["explanations"] = [to_fields(one) for one in found.explanations]
            if response.state is not None:
                multi["state"] = base64.b64encode(response.state).decode()
            if response.state_sha256 is not None:
                multi["state_sha256"] = response.state_sha256
            out["detect"] = multi
        elif isinstance(response.result, DetectResult):
            result = response.result
            detect: dict[str, Any] = {
                "timestamps": _array_out(result.timestamps, packed),
                "scores": _array_out(result.scores, packed),
            }
            for name in ("expected", "lower", "upper"):
                band = getattr(result, name)
                if band is not None:
                    detect[name] = _array_out(band, packed)
            if result.explanations is not None:
                detect["explanations"] = [to_fields(one) for one in result.explanations]
            if response.state is not None:
                detect["state"] = base64.b64encode(response.state).decode()
            if response.state_sha256 is not None:
                detect["state_sha256"] = response.state_sha256
            out["detect"] = detect
        elif isinstance(response.result, RCAResult):
            out["rca"] = {"contributions": dict(response.result.contributions)}
        elif isinstance(response.result, FitResult):
            fitted = response.result
            out["fit"] = {
                "state": base64.b64encode(fitted.state).decode(),
                "state_sha256": fitted.state_sha256,
                "state_version": fitted.state_version,
                "points": fitted.points,
                "seen_start": fitted.seen_start,
                "seen_end": fitted.seen_end,
            }
        return orjson.dumps(out, option=_DUMP_OPTIONS)

    def encode_request(self, request: Request) -> bytes:
        packed = request.packed_arrays
        out: dict[str, Any] = {
            "interface": request.interface,
            "algorithm": request.algorithm,
            "params": request.params,
        }
        if request.request_id is not None:
            out["request_id"] = request.request_id
        if not request.include_band:
            out["include_band"] = False
        if packed:
            out["packed_arrays"] = True
        if request.include_explanations:
            out["include_explanations"] = True
        payload = request.payload
        if isinstance(payload, DetectPayload):
            detect: dict[str, Any] = {
                "dimensions": payload.dimensions,
                "timestamps": _array_out(payload.timestamps, packed),
                **_input_out(payload, packed),
            }
            if payload.state is not None:
                detect["state"] = base64.b64encode(payload.state).decode()
            for name in ("state_sha256", "model"):
                if getattr(payload, name) is not None:
                    detect[name] = getattr(payload, name)
            if payload.return_state:
                detect["return_state"] = True
            if payload.return_state_sha256_only:
                detect["return_state_sha256_only"] = True
            out["detect"] = detect
        elif isinstance(payload, FitPayload):
            out["fit"] = {
                "dimensions": payload.dimensions,
                "timestamps": _array_out(payload.timestamps, packed),
                **_input_out(payload, packed),
            }
        else:
            out["rca"] = {
                "metric_of_interest": _series_out(payload.metric_of_interest, packed),
                "related_metrics": [_series_out(s, packed) for s in payload.related_metrics],
                "k": payload.k,
                "anomalies": _array_out(payload.anomalies, packed),
            }
            if payload.graph is not None:
                out["rca"]["graph"] = _graph_out(payload.graph)
        return orjson.dumps(out, option=_DUMP_OPTIONS)

    def decode_response(self, data: bytes | bytearray) -> Response:
        obj = orjson.loads(data)
        wire = WireResponse.model_validate(obj)
        if wire.error is not None:
            return Response(
                request_id=wire.request_id,
                error=ErrorInfo(ErrorCode(wire.error.code), wire.error.message, wire.error.field),
            )
        result: DetectResult | MultivariateResult | RCAResult | FitResult | None = None
        packed = False
        state: bytes | None = None
        state_sha256: str | None = None
        if wire.detect is not None:
            d = wire.detect
            packed = isinstance(obj["detect"]["timestamps"], dict)
            explanations = None
            if d.explanations is not None:
                explanations = tuple(from_fields(one.model_dump()) for one in d.explanations)
            if d.contributions is not None:
                detections = np.asarray(d.scores).shape[0]
                width = _width_of(d.contributions, detections)
                names = [str(i) for i in range(width)]
                result = MultivariateResult(
                    timestamps=d.timestamps,  # type: ignore[arg-type]
                    scores=d.scores,  # type: ignore[arg-type]
                    contributions=_matrix(d.contributions, names, "detect.contributions"),
                    expected=None
                    if d.expected_matrix is None
                    else _matrix(d.expected_matrix, names, "detect.expected_matrix"),
                    explanations=explanations,
                )
            else:
                result = DetectResult(
                    timestamps=d.timestamps,  # type: ignore[arg-type]
                    scores=d.scores,  # type: ignore[arg-type]
                    expected=d.expected,  # type: ignore[arg-type]
                    lower=d.lower,  # type: ignore[arg-type]
                    upper=d.upper,  # type: ignore[arg-type]
                    explanations=explanations,
                )
            state, state_sha256 = d.state, d.state_sha256  # type: ignore[assignment]
        elif wire.rca is not None:
            result = RCAResult(contributions=tuple(wire.rca.contributions.items()))
        elif wire.fit is not None:
            f = wire.fit
            result = FitResult(
                state=f.state,  # type: ignore[arg-type]  # bytes, by the validator
                state_sha256=f.state_sha256,
                state_version=f.state_version,
                points=f.points,
                seen_start=f.seen_start,
                seen_end=f.seen_end,
            )
        return Response(
            request_id=wire.request_id,
            result=result,
            packed_arrays=packed,
            state=state,
            state_sha256=state_sha256,
        )


class WireError(_Wire):
    code: Literal[
        "INVALID_INPUT",
        "UNKNOWN_ALGORITHM",
        "INVALID_PARAMS",
        "ALGORITHM_FAILED",
        "TIMEOUT",
        "INTERNAL",
        "INCOMPATIBLE_STATE",
        "STATE_NOT_FOUND",
    ]
    message: str
    field: str | None = None


class WireExplanation(_Wire):
    """Why one detection fired (README "Explanations"); unknown numbers are left out."""

    peak: int | None = Field(default=None, description="Time of the run's most anomalous point.")
    last: int | None = Field(default=None, description="Time of the run's last point.")
    points: int | None = Field(default=None, description="Flagged points in the run.")
    actual: float | None = Field(default=None, description="The value at the peak.")
    expected: float | None = Field(default=None, description="The expected value there.")
    lower: float | None = None
    upper: float | None = None
    band_units: float | None = Field(
        default=None,
        description="(actual - expected) in half-widths of the band on that side: 1 at its edge, "
        "negative below; without expected, from the band's middle.",
    )
    members: list[str] = Field(default=[], description="An ensemble's members that flagged it.")
    context: dict[str, str] = Field(
        default={}, description="What else the detector knew, e.g. a seasonal model's periods."
    )
    columns: list[str] = Field(default=[], description="Multivariate: the top columns...")
    shares: list[float] = Field(default=[], description="...and their shares, largest first.")
    reason: str = Field(default="", description="The same in one sentence.")


class WireDetectResult(_Wire):
    timestamps: I64Wire
    scores: F64Wire
    expected: F64Wire | None = None
    lower: F64Wire | None = None
    upper: F64Wire | None = None
    contributions: MatrixWire | None = Field(
        default=None,
        description="Multivariate: per detection, each column's share in it (>= 0, summing to "
        "1), in the order of the request's columns; packed: detections x columns.",
    )
    expected_matrix: MatrixWire | None = Field(
        default=None,
        description="Multivariate, when the detector has them: every cell's expected value "
        "(null: no opinion), a row per timestamp; packed: rows x columns.",
    )
    explanations: list[WireExplanation] | None = Field(
        default=None,
        description="With include_explanations: one per detection, in the order of timestamps.",
    )
    state: StateWire | None = Field(
        default=None, description="With return_state: the state after the request's points."
    )
    state_sha256: str | None = Field(default=None, pattern=SHA256_HEX)


class WireFitResult(_Wire):
    state: StateWire = Field(description="The fitted state (base64): store it, send it back.")
    state_sha256: str = Field(pattern=SHA256_HEX, description="sha256 of the state's bytes.")
    state_version: int
    points: int = Field(description="Points learnt, missing values included.")
    seen_start: int | None
    seen_end: int | None


class WireRCAResult(_Wire):
    contributions: dict[str, float]


class WireResponse(_Wire):
    """A response: ``status`` ok with the interface's result, or error with a code."""

    status: Literal["ok", "error"]
    request_id: str | None = None
    detect: WireDetectResult | None = None
    rca: WireRCAResult | None = None
    fit: WireFitResult | None = None
    error: WireError | None = None
