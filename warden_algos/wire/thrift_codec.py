"""The Thrift forms of the envelope: binary and compact protocols, one IDL (``warden.thrift``).

Uses the ``thrift`` package's C-accelerated protocols (``fastbinary``): a struct is read or written
in one C call. Packed arrays (``*_packed`` binary fields) become numpy arrays with no per-element
work at all; Thrift lists take one ``np.fromiter`` pass. Decoding limits every string and container
to the size of the message itself, so a forged length cannot make the reader allocate more than
the bytes it was given; and before the reader runs, ``thrift_budget`` walks the request's structure
to refuse one whose decoded form would exceed the per-request memory budget.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import orjson
from thrift.protocol.TBinaryProtocol import (
    TBinaryProtocolAcceleratedFactory,
    TBinaryProtocolFactory,
)
from thrift.protocol.TCompactProtocol import (
    TCompactProtocolAcceleratedFactory,
    TCompactProtocolFactory,
)
from thrift.transport.TTransport import TMemoryBuffer

from warden_algos.interfaces import (
    DetectResult,
    ErrorCode,
    F64Array,
    I64Array,
    InvalidInput,
    RCAResult,
    TimeSeries,
)
from warden_algos.interfaces.graph import check_edge_count
from warden_algos.interfaces.multivariate import MultivariateResult
from warden_algos.interfaces.types import Explanation

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
from .explanations import FIELDS, from_fields, to_fields
from .matrices import from_flat, from_rows
from .thrift_budget import check_thrift_decode_budget
from .warden_wire import ttypes as wire

_MAX_ALGORITHM = 200
_MAX_REQUEST_ID = 512
_CODE_TO_WIRE = {code: wire.ErrorCode._NAMES_TO_VALUES[code.value] for code in ErrorCode}
_WIRE_TO_CODE = {value: code for code, value in _CODE_TO_WIRE.items()}

AcceleratedFactory = (
    type[TBinaryProtocolAcceleratedFactory] | type[TCompactProtocolAcceleratedFactory]
)
PlainFactory = type[TBinaryProtocolFactory] | type[TCompactProtocolFactory]


def _array(
    path: str, items: list[Any] | None, packed: bytes | None, dtype: str, *, required: bool = True
) -> np.ndarray[Any, Any] | None:
    if items is not None and packed is not None:
        raise InvalidInput("set either the list or the packed form, not both", field=path)
    if packed is not None:
        if len(packed) % 8:
            raise InvalidInput(
                f"packed array of {len(packed)} bytes is not a whole number of 8-byte items",
                field=path,
            )
        return np.frombuffer(packed, dtype=np.dtype(dtype).newbyteorder("<")).astype(
            dtype, copy=False
        )
    if items is None:
        if required:
            raise InvalidInput("missing (give the list or the packed form)", field=path)
        return None
    return np.fromiter(items, dtype, len(items))


def _i64(path: str, items: list[int] | None, packed: bytes | None) -> I64Array:
    array: I64Array = _array(path, items, packed, "int64")  # type: ignore[assignment]
    return array


def _f64(path: str, items: list[float] | None, packed: bytes | None) -> F64Array:
    array: F64Array = _array(path, items, packed, "float64")  # type: ignore[assignment]
    return array


def _series(path: str, series: wire.TimeSeries | None) -> TimeSeries:
    if series is None:
        raise InvalidInput("missing", field=path)
    return TimeSeries(
        dimensions=dict(series.dimensions or {}),
        times=_i64(f"{path}.times", series.times, series.times_packed),
        values=_f64(f"{path}.values", series.values, series.values_packed),
        sizes=_array(f"{path}.sizes", series.sizes, series.sizes_packed, "int64", required=False),
        variances=_array(
            f"{path}.variances",
            series.variances,
            series.variances_packed,
            "float64",
            required=False,
        ),
    )


def _graph(edges: list[wire.GraphEdge] | None) -> list[tuple[str, str]] | None:
    """The payload's (parent, child) pairs, each side set; checked against the metrics by
    ``run_rca``. The count is checked again here for a message the budget walk did not visit."""
    if edges is None:
        return None
    check_edge_count(len(edges))
    pairs = []
    for index, edge in enumerate(edges):
        for side in ("parent", "child"):
            if getattr(edge, side) is None:
                raise InvalidInput("missing", field=f"rca.graph[{index}].{side}")
        pairs.append((edge.parent, edge.child))
    return pairs


def _graph_out(graph: list[tuple[str, str]] | None) -> list[wire.GraphEdge] | None:
    if graph is None:
        return None
    return [wire.GraphEdge(parent=parent, child=child) for parent, child in graph]


def _input(path: str, message: Any) -> tuple[F64Array, dict[str, Any]]:
    """A detect or fit payload's series: (values, {}) or (empty, {columns, matrix})."""
    has_matrix = message.matrix is not None or message.matrix_packed is not None
    has_values = message.values is not None or message.values_packed is not None
    if has_matrix and has_values:
        raise InvalidInput(
            "give values (one series) or columns and matrix (several), not both", field=path
        )
    if not has_matrix:
        if message.columns is not None:
            raise InvalidInput("columns need a matrix", field=f"{path}.columns")
        return _f64(f"{path}.values", message.values, message.values_packed), {}
    if message.columns is None:
        raise InvalidInput("a matrix needs its columns", field=f"{path}.columns")
    columns = list(message.columns)
    return np.empty(0), {
        "columns": columns,
        "matrix": _matrix(f"{path}.matrix", message.matrix, message.matrix_packed, len(columns)),
    }


def _matrix(
    path: str, rows: list[list[float]] | None, packed: bytes | None, width: int
) -> F64Array:
    """Rows (a list each) or packed row-major doubles, as rows x ``width`` float64."""
    if rows is not None and packed is not None:
        raise InvalidInput("set either the list or the packed form, not both", field=path)
    if packed is not None:
        flat = _f64(path, None, packed)
        return from_flat(flat, width, path)
    assert rows is not None
    return from_rows(rows, width, path)


def _matrix_or_packed(matrix: F64Array | None, packed: bool) -> tuple[Any, Any]:
    """(rows, packed) of a matrix for the wire: exactly one set (both None for no matrix)."""
    if matrix is None:
        return None, None
    cells = np.ascontiguousarray(matrix, dtype=np.float64)
    if packed:
        return None, cells.astype("<f8", copy=False).tobytes()
    return cells.tolist(), None


def _sha256_or_none(path: str, text: str | None) -> str | None:
    if text is not None and (
        len(text) != 64 or any(char not in "0123456789abcdef" for char in text)
    ):
        raise InvalidInput("must be 64 lower-case hex digits (a state's sha256)", field=path)
    return text


def _model_or_none(text: str | None) -> str | None:
    if text is not None and not 1 <= len(text) <= 1024:
        raise InvalidInput("must be 1 to 1024 characters", field="detect.model")
    return text


def _check_state_choice(payload: DetectPayload) -> None:
    given = [
        name for name in ("state", "state_sha256", "model") if getattr(payload, name) is not None
    ]
    if len(given) > 1:
        raise InvalidInput(
            f"give one of state, state_sha256 and model, not {' and '.join(given)}",
            field="detect",
        )
    if payload.return_state_sha256_only and not payload.return_state:
        raise InvalidInput(
            "return_state_sha256_only needs return_state", field="detect.return_state_sha256_only"
        )
    if payload.return_state and not given:
        raise InvalidInput(
            "return_state needs a state (state, state_sha256 or model): a first state comes "
            "from a fit request",
            field="detect.return_state",
        )


def _params(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        params = orjson.loads(text)
    except orjson.JSONDecodeError as error:
        raise InvalidInput(f"params_json is not valid JSON: {error}", field="params") from None
    if not isinstance(params, dict):
        raise InvalidInput(
            f"params_json must be a JSON object, got {type(params).__name__}", field="params"
        )
    check_no_duplicate_keys(text, params, root="params")
    return params


def _list_or_packed(array: np.ndarray[Any, Any] | None, packed: bool) -> tuple[Any, Any]:
    """(list form, packed form) of an array for the wire: exactly one is set."""
    if array is None:
        return None, None
    if packed:
        return None, array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
    return array.tolist(), None


def _series_out(series: TimeSeries, packed: bool) -> wire.TimeSeries:
    times, times_packed = _list_or_packed(series.times, packed)
    values, values_packed = _list_or_packed(series.values, packed)
    sizes, sizes_packed = _list_or_packed(series.sizes, packed)
    variances, variances_packed = _list_or_packed(series.variances, packed)
    return wire.TimeSeries(
        dimensions=dict(sorted(series.dimensions.items())),
        times=times,
        values=values,
        sizes=sizes,
        variances=variances,
        times_packed=times_packed,
        values_packed=values_packed,
        sizes_packed=sizes_packed,
        variances_packed=variances_packed,
    )


#: Binary bytes in a message above which the pure-Python writer is faster (measured: ~20-30 KB).
_C_WRITER_BINARY_LIMIT = 16 * 1024


def _binary_bytes(struct: Any, depth: int = 0) -> int:
    """The bytes of the binary fields in a generated struct and the structs it holds."""
    total = 0
    for name in getattr(struct, "__slots__", ()):
        value = getattr(struct, name, None)
        if isinstance(value, bytes):
            total += len(value)
        elif depth < 3 and hasattr(value, "thrift_spec"):
            total += _binary_bytes(value, depth + 1)
        elif depth < 3 and isinstance(value, list) and value and hasattr(value[0], "thrift_spec"):
            total += sum(_binary_bytes(item, depth + 1) for item in value)
    return total


def _series_fields(payload: DetectPayload | FitPayload, packed: bool) -> dict[str, Any]:
    """What a detect and a fit payload share on the wire: the dimensions, the times, and the
    values or the columns and matrix, each as a list or packed."""
    timestamps, timestamps_packed = _list_or_packed(payload.timestamps, packed)
    values, values_packed = _list_or_packed(
        payload.values if payload.matrix is None else None, packed
    )
    rows, rows_packed = _matrix_or_packed(payload.matrix, packed)
    return {
        "dimensions": list(payload.dimensions),
        "timestamps": timestamps,
        "values": values,
        "timestamps_packed": timestamps_packed,
        "values_packed": values_packed,
        "columns": None if payload.columns is None else list(payload.columns),
        "matrix": rows,
        "matrix_packed": rows_packed,
    }


def _explanations_out(
    explanations: tuple[Explanation, ...] | None,
) -> list[wire.Explanation] | None:
    if explanations is None:
        return None
    return [wire.Explanation(**to_fields(one)) for one in explanations]


def _explanations_in(
    explanations: list[wire.Explanation] | None,
) -> tuple[Explanation, ...] | None:
    if explanations is None:
        return None
    return tuple(from_fields({name: getattr(one, name) for name in FIELDS}) for one in explanations)


class _ThriftCodec:
    name: Literal["thrift-binary", "thrift-compact"]
    _factory: AcceleratedFactory
    _plain_factory: PlainFactory

    def _serialize(self, struct: Any, packed: bool) -> bytes:
        """The C writer, except for messages carrying large binary fields.

        fastbinary copies a binary field slowly (about 100 ms for 24 MB here), while the Python
        writer hands each one to the buffer in a single write (about 3 ms); below some 20 KB of
        binary data the C writer is the faster one (5 us against 17 us for a streamed point
        with a small state). Both produce the same bytes.
        """
        buffer = TMemoryBuffer()
        large = packed and _binary_bytes(struct) > _C_WRITER_BINARY_LIMIT
        factory = self._plain_factory() if large else self._factory()
        struct.write(factory.getProtocol(buffer))
        data: bytes = buffer.getvalue()
        return data

    def _deserialize(self, struct: Any, data: bytes | bytearray, what: str) -> None:
        raw = bytes(data)
        buffer = TMemoryBuffer(raw)
        limit = max(len(raw), 1)
        protocol = self._factory(
            string_length_limit=limit, container_length_limit=limit
        ).getProtocol(buffer)
        try:
            struct.read(protocol)
        except Exception as error:  # the C reader raises several types on malformed input
            raise InvalidInput(
                f"{what} is not valid {self.name}: {type(error).__name__}: {error}"
            ) from None
        left = len(raw) - buffer._buffer.tell()
        if left:
            raise InvalidInput(f"{what} has {left} bytes after the end of the {self.name} struct")

    def decode_request(self, data: bytes | bytearray) -> Request:
        check_thrift_decode_budget(data, self.name)  # the C reader materialises everything at once
        message = wire.Request()
        self._deserialize(message, data, "request")
        request_id = message.request_id
        try:
            return self._request(message)
        except InvalidInput as error:
            error.request_id = request_id
            raise

    def _request(self, message: wire.Request) -> Request:
        if message.request_id is not None and len(message.request_id) > _MAX_REQUEST_ID:
            raise InvalidInput(f"longer than {_MAX_REQUEST_ID} characters", field="request_id")
        interface = message.interface_name
        if interface not in ("detect", "rca", "fit"):
            raise InvalidInput(
                f"must be 'detect', 'rca' or 'fit', got {interface!r}", field="interface_name"
            )
        if not message.algorithm or len(message.algorithm) > _MAX_ALGORITHM:
            raise InvalidInput(
                f"must be 1 to {_MAX_ALGORITHM} characters, got {message.algorithm!r}",
                field="algorithm",
            )
        present = [name for name in ("detect", "rca", "fit") if getattr(message, name) is not None]
        if present != [interface]:
            raise InvalidInput(
                f"interface {interface!r} needs exactly one payload struct, {interface!r}; got: "
                f"{', '.join(present) or 'none'}"
            )
        payload: DetectPayload | RCAPayload | FitPayload
        if message.detect is not None:
            detect = message.detect
            values, matrix = _input("detect", detect)
            payload = DetectPayload(
                dimensions=list(detect.dimensions or []),
                timestamps=_i64("detect.timestamps", detect.timestamps, detect.timestamps_packed),
                values=values,
                state=detect.state,
                state_sha256=_sha256_or_none("detect.state_sha256", detect.state_sha256),
                model=_model_or_none(detect.model),
                return_state=bool(detect.return_state),
                return_state_sha256_only=bool(detect.return_state_sha256_only),
                **matrix,
            )
            _check_state_choice(payload)
        elif message.fit is not None:
            fit = message.fit
            values, matrix = _input("fit", fit)
            payload = FitPayload(
                dimensions=list(fit.dimensions or []),
                timestamps=_i64("fit.timestamps", fit.timestamps, fit.timestamps_packed),
                values=values,
                **matrix,
            )
        else:
            rca = message.rca
            if rca.k is None:
                raise InvalidInput("missing", field="rca.k")
            if rca.k < 1:
                raise InvalidInput(f"must be at least 1, got {rca.k}", field="rca.k")
            anomalies = _array(
                "rca.anomalies", rca.anomalies, rca.anomalies_packed, "int64", required=False
            )
            payload = RCAPayload(
                metric_of_interest=_series("rca.metric_of_interest", rca.metric_of_interest),
                related_metrics=[
                    _series(f"rca.related_metrics[{index}]", series)
                    for index, series in enumerate(rca.related_metrics or [])
                ],
                k=rca.k,
                anomalies=np.empty(0, dtype=np.int64) if anomalies is None else anomalies,
                graph=_graph(rca.graph),
            )
        return Request(
            interface=interface,
            algorithm=message.algorithm,
            payload=payload,
            params=_params(message.params_json),
            request_id=message.request_id,
            include_band=message.include_band is not False,
            packed_arrays=bool(message.packed_arrays),
            include_explanations=bool(message.include_explanations),
        )

    def encode_response(self, response: Response) -> bytes:
        packed = response.packed_arrays
        out = wire.Response(status="ok" if response.ok else "error", request_id=response.request_id)
        if response.error is not None:
            out.error = wire.Error(
                code=_CODE_TO_WIRE[response.error.code],
                message=response.error.message,
                field=response.error.field,
            )
        elif isinstance(response.result, MultivariateResult):
            found = response.result
            timestamps, timestamps_packed = _list_or_packed(found.timestamps, packed)
            scores, scores_packed = _list_or_packed(found.scores, packed)
            shares, shares_packed = _matrix_or_packed(found.contributions, packed)
            expected, expected_packed = _matrix_or_packed(found.expected, packed)
            out.detect = wire.DetectResult(
                timestamps=timestamps,
                scores=scores,
                timestamps_packed=timestamps_packed,
                scores_packed=scores_packed,
                state=response.state,
                state_sha256=response.state_sha256,
                contributions=shares,
                contributions_packed=shares_packed,
                expected_matrix=expected,
                expected_matrix_packed=expected_packed,
                explanations=_explanations_out(found.explanations),
            )
        elif isinstance(response.result, DetectResult):
            result = response.result
            timestamps, timestamps_packed = _list_or_packed(result.timestamps, packed)
            scores, scores_packed = _list_or_packed(result.scores, packed)
            expected, expected_packed = _list_or_packed(result.expected, packed)
            lower, lower_packed = _list_or_packed(result.lower, packed)
            upper, upper_packed = _list_or_packed(result.upper, packed)
            out.detect = wire.DetectResult(
                timestamps=timestamps,
                scores=scores,
                expected=expected,
                lower=lower,
                upper=upper,
                timestamps_packed=timestamps_packed,
                scores_packed=scores_packed,
                expected_packed=expected_packed,
                lower_packed=lower_packed,
                upper_packed=upper_packed,
                state=response.state,
                state_sha256=response.state_sha256,
                explanations=_explanations_out(result.explanations),
            )
        elif isinstance(response.result, FitResult):
            fitted = response.result
            out.fit = wire.FitResult(
                state=fitted.state,
                state_sha256=fitted.state_sha256,
                state_version=fitted.state_version,
                points=fitted.points,
                seen_start=fitted.seen_start,
                seen_end=fitted.seen_end,
            )
        elif isinstance(response.result, RCAResult):
            out.rca = wire.RcaResult(
                contributions=[
                    wire.Contribution(key=key, score=score)
                    for key, score in response.result.contributions
                ]
            )
        return self._serialize(out, packed)

    def encode_request(self, request: Request) -> bytes:
        packed = request.packed_arrays
        out = wire.Request(
            interface_name=request.interface,
            algorithm=request.algorithm,
            params_json=orjson.dumps(request.params).decode() if request.params else None,
            request_id=request.request_id,
            include_band=None if request.include_band else False,
            packed_arrays=True if packed else None,
            include_explanations=True if request.include_explanations else None,
        )
        payload = request.payload
        if isinstance(payload, DetectPayload):
            out.detect = wire.DetectPayload(
                **_series_fields(payload, packed),
                state=payload.state,
                state_sha256=payload.state_sha256,
                model=payload.model,
                return_state=True if payload.return_state else None,
                return_state_sha256_only=True if payload.return_state_sha256_only else None,
            )
        elif isinstance(payload, FitPayload):
            out.fit = wire.FitPayload(**_series_fields(payload, packed))
        else:
            anomalies, anomalies_packed = _list_or_packed(payload.anomalies, packed)
            out.rca = wire.RcaPayload(
                metric_of_interest=_series_out(payload.metric_of_interest, packed),
                related_metrics=[_series_out(s, packed) for s in payload.related_metrics],
                k=payload.k,
                anomalies=anomalies,
                anomalies_packed=anomalies_packed,
                graph=_graph_out(payload.graph),
            )
        return self._serialize(out, packed)

    def decode_response(self, data: bytes | bytearray) -> Response:
        message = wire.Response()
        self._deserialize(message, data, "response")
        if message.error is not None:
            code = _WIRE_TO_CODE.get(message.error.code, ErrorCode.INTERNAL)
            return Response(
                request_id=message.request_id,
                error=ErrorInfo(code, message.error.message or "", message.error.field),
            )
        result: DetectResult | MultivariateResult | RCAResult | FitResult | None = None
        packed = False
        state: bytes | None = None
        state_sha256: str | None = None
        if message.detect is not None:
            d = message.detect
            state, state_sha256 = d.state, d.state_sha256
            packed = d.timestamps_packed is not None
            if d.contributions is not None or d.contributions_packed is not None:
                scores = _f64("detect.scores", d.scores, d.scores_packed)
                found = scores.shape[0]
                if d.contributions is not None:
                    width = len(d.contributions[0]) if d.contributions else 0
                else:
                    cells = len(d.contributions_packed or b"") // 8
                    width = cells // found if found else 0
                shares = (
                    _matrix("detect.contributions", d.contributions, d.contributions_packed, width)
                    if found
                    else np.empty((0, 0))
                )
                expected = None
                if d.expected_matrix is not None or d.expected_matrix_packed is not None:
                    expected = _matrix(
                        "detect.expected_matrix", d.expected_matrix, d.expected_matrix_packed,
                        width,
                    )  # fmt: skip
                multi = MultivariateResult(
                    timestamps=_i64("detect.timestamps", d.timestamps, d.timestamps_packed),
                    scores=scores,
                    contributions=shares,
                    expected=expected,
                    explanations=_explanations_in(d.explanations),
                )
                return Response(
                    request_id=message.request_id,
                    result=multi,
                    packed_arrays=packed,
                    state=state,
                    state_sha256=state_sha256,
                )
            result = DetectResult(
                timestamps=_i64("detect.timestamps", d.timestamps, d.timestamps_packed),
                scores=_f64("detect.scores", d.scores, d.scores_packed),
                expected=_array(
                    "detect.expected", d.expected, d.expected_packed, "float64", required=False
                ),
                lower=_array("detect.lower", d.lower, d.lower_packed, "float64", required=False),
                upper=_array("detect.upper", d.upper, d.upper_packed, "float64", required=False),
                explanations=_explanations_in(d.explanations),
            )
        elif message.rca is not None:
            result = RCAResult(
                contributions=tuple((c.key, c.score) for c in (message.rca.contributions or []))
            )
        elif message.fit is not None:
            f = message.fit
            result = FitResult(
                state=f.state or b"",
                state_sha256=f.state_sha256 or "",
                state_version=f.state_version or 0,
                points=f.points or 0,
                seen_start=f.seen_start,
                seen_end=f.seen_end,
            )
        return Response(
            request_id=message.request_id,
            result=result,
            packed_arrays=packed,
            state=state,
            state_sha256=state_sha256,
        )


class ThriftBinaryCodec(_ThriftCodec):
    name = "thrift-binary"
    _factory = TBinaryProtocolAcceleratedFactory
    _plain_factory = TBinaryProtocolFactory


class ThriftCompactCodec(_ThriftCodec):
    name = "thrift-compact"
    _factory = TCompactProtocolAcceleratedFactory
    _plain_factory = TCompactProtocolFactory
