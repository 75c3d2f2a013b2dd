/*
 * warden-algos wire envelope, Thrift form.
 *
 * This is the one file the JVM platform compiles. It carries exactly the envelope of the JSON form
 * (README "The wire contract"): a Request names an interface and an algorithm, gives the
 * algorithm's params and the interface's payload; a Response carries either the interface's result
 * or an Error with a stable code. Both the binary and the compact protocol are spoken.
 *
 * Numeric arrays come in two spellings, and a sender sets exactly one of each pair:
 *   - a Thrift list (list<i64>, list<double>): natural for Java; NaN is a missing value;
 *   - a packed array (binary field, name ending in _packed): the array's little-endian bytes,
 *     8 per element. Decoding it costs a copy instead of a per-element loop, which is what makes
 *     a million points cheap (see benchmarks/codecs.py).
 * A request that sets packed_arrays = true gets packed arrays back.
 *
 * Trained algorithms (README "Trained algorithms"): a "fit" request learns from history and answers
 * the fitted state, an opaque blob of bytes the host stores or sends back; a detect request may
 * carry a state (or name one: by sha256 in a serve process's cache, or a stored model by series
 * key) and then scores only the points after it, and may ask for the updated state back.
 *
 * Multivariate detection (README "Several columns at once"): instead of values, a detect or fit
 * payload may carry a matrix of named columns, a row per timestamp (NaN = missing): columns, and
 * the matrix as rows (list<list<double>>) or packed (matrix_packed: rows x columns doubles,
 * row-major, little-endian). The answer adds, per detection, each column's share in it
 * (contributions, rows = detections, in the order of columns), and may add expected_matrix.
 *
 * Explanations: a request with include_explanations = true gets, per detection, an Explanation
 * (expected vs actual in band units, an ensemble's members, a seasonal context, the top columns).
 *
 * Evolution rules (keep old hosts and old executables working):
 *   1. Every field is optional and has a stable id. Never reuse or renumber an id, never change a
 *      field's type; to replace a field, add a new one with a new id and deprecate the old one
 *      in a comment.
 *   2. New fields go at the end with the next free id. An old reader skips fields it does not
 *      know, so adding fields is always compatible.
 *   3. New ErrorCode values may appear: a host must treat a code it does not know as INTERNAL
 *      (the Java enum's findByValue returns null for it).
 *   4. ENVELOPE_VERSION is bumped when the meaning of an existing field changes (never done
 *      silently). A Request may carry the version it was written against.
 *   5. Fields are written in id order and map keys sorted, so that both sides produce the same
 *      bytes for the same envelope (the shared test vectors check this byte for byte).
 */

namespace java warden.algos.thrift
namespace py warden_wire

const i32 ENVELOPE_VERSION = 1

enum ErrorCode {
  INVALID_INPUT = 1,
  UNKNOWN_ALGORITHM = 2,
  INVALID_PARAMS = 3,
  ALGORITHM_FAILED = 4,
  TIMEOUT = 5,
  INTERNAL = 6,
  /** A state that does not fit the request: another algorithm's, fitted with other params, or a
      state version this installation does not read. Fit again (or send the right params). */
  INCOMPATIBLE_STATE = 7,
  /** A state named by reference (state_sha256, model) that this process does not have: resend
      the state itself. */
  STATE_NOT_FOUND = 8,
}

/** One metric: dimensions and aligned arrays (sizes and variances are optional). */
struct TimeSeries {
  1: optional map<string, string> dimensions,
  2: optional list<i64> times,
  3: optional list<double> values,
  4: optional list<i64> sizes,
  5: optional list<double> variances,
  6: optional binary times_packed,
  7: optional binary values_packed,
  8: optional binary sizes_packed,
  9: optional binary variances_packed,
}

/** detect(dimensions, timestamps, values) */
struct DetectPayload {
  1: optional list<string> dimensions,
  2: optional list<i64> timestamps,
  3: optional list<double> values,
  4: optional binary timestamps_packed,
  5: optional binary values_packed,
  /** A fitted state, as a fit or an earlier detect returned it: only points after it are given. */
  6: optional binary state,
  /** Instead of state: the sha256 (hex) of a state this serve process was sent or returned. */
  7: optional string state_sha256,
  /** Instead of state: the stored model of this series key (serve/run --models-dir). */
  8: optional string model,
  /** Unset means false: answer the state after these points too (DetectResult.state). */
  9: optional bool return_state,
  /** With return_state, to a serve process: keep the new state in the process and answer only
      its state_sha256 (not the bytes). A later STATE_NOT_FOUND then means the caller must resend
      the last state it holds the bytes of, with every point since. */
  10: optional bool return_state_sha256_only,
  /** Multivariate (instead of values / values_packed): the matrix's column names, in order. */
  11: optional list<string> columns,
  /** The matrix, a row of len(columns) doubles per timestamp (NaN = missing)... */
  12: optional list<list<double>> matrix,
  /** ...or packed: rows x columns doubles, row-major, little-endian. */
  13: optional binary matrix_packed,
}

/** fit(dimensions, timestamps, values) -> state */
struct FitPayload {
  1: optional list<string> dimensions,
  2: optional list<i64> timestamps,
  3: optional list<double> values,
  4: optional binary timestamps_packed,
  5: optional binary values_packed,
  /** Multivariate, as in DetectPayload: fit on a matrix of named columns. */
  6: optional list<string> columns,
  7: optional list<list<double>> matrix,
  8: optional binary matrix_packed,
}

/** One edge of an RCA request's dependency graph: a change of parent propagates to child. Both
    are keys (TimeSeries dimensions rendered, e.g. "dependency=db") of the metric of interest or of
    a related metric; both must be set. */
struct GraphEdge {
  /** The cause side: the metric whose change propagates. */
  1: optional string parent,
  /** The metric it propagates to. */
  2: optional string child,
}

/** simple_rca(metric_of_interest, related_metrics, k, anomalies, params) */
struct RcaPayload {
  1: optional TimeSeries metric_of_interest,
  2: optional list<TimeSeries> related_metrics,
  3: optional i32 k,
  4: optional list<i64> anomalies,
  5: optional binary anomalies_packed,
  /** How the metrics depend on each other, when the host knows it (unset: no graph): at most
      100,000 edges, acyclic, no self-loops, between the request's own keys (else INVALID_INPUT,
      field rca.graph or rca.graph[i].parent / .child). An algorithm may use it; one that does not
      ignores it. */
  6: optional list<GraphEdge> graph,
}

struct Request {
  /** "detect", "rca" or "fit"; names which payload is set. */
  1: optional string interface_name,
  2: optional string algorithm,
  /** The algorithm's params as one JSON object ("{}" or unset for the defaults). */
  3: optional string params_json,
  4: optional string request_id,
  /** Unset means true: return expected/lower/upper for every point when the algorithm has them. */
  5: optional bool include_band,
  /** Unset means false: answer with lists, not packed arrays. */
  6: optional bool packed_arrays,
  7: optional DetectPayload detect,
  8: optional RcaPayload rca,
  /** The ENVELOPE_VERSION the sender was written against. */
  9: optional i32 envelope_version,
  10: optional FitPayload fit,
  /** Unset means false: answer one Explanation per detection (DetectResult.explanations). */
  11: optional bool include_explanations,
}

/** Why one detection fired (README "Explanations"): every field optional, unset when unknown. */
struct Explanation {
  /** The times of the run's most anomalous point and of its last point; its flagged points. */
  1: optional i64 peak,
  2: optional i64 last,
  3: optional i64 points,
  /** The value at the peak and the band there. */
  4: optional double actual,
  5: optional double expected,
  6: optional double lower,
  7: optional double upper,
  /** (actual - expected) in half-widths of the band on that side: 1 at its edge, negative
      below; without expected, measured from the band's middle. */
  8: optional double band_units,
  /** An ensemble's members that flagged a point of the run. */
  9: optional list<string> members,
  /** What else the detector knew, e.g. a seasonal model's periods_s and phase_s. */
  10: optional map<string, string> context,
  /** Multivariate: the columns that drove it and their shares, largest first. */
  11: optional list<string> columns,
  12: optional list<double> shares,
  /** The same in one sentence. */
  13: optional string reason,
}

struct DetectResult {
  1: optional list<i64> timestamps,
  2: optional list<double> scores,
  3: optional list<double> expected,
  4: optional list<double> lower,
  5: optional list<double> upper,
  6: optional binary timestamps_packed,
  7: optional binary scores_packed,
  8: optional binary expected_packed,
  9: optional binary lower_packed,
  10: optional binary upper_packed,
  /** With return_state: the state after the request's points, and the sha256 (hex) of its bytes. */
  11: optional binary state,
  12: optional string state_sha256,
  /** Multivariate: per detection, each column's share in it (>= 0, summing to 1), a row per
      detection in the order of the request's columns; or packed (detections x columns). */
  13: optional list<list<double>> contributions,
  14: optional binary contributions_packed,
  /** Multivariate, when the detector has them: the expected value of every cell (NaN: no
      opinion), a row per timestamp; or packed (rows x columns). */
  15: optional list<list<double>> expected_matrix,
  16: optional binary expected_matrix_packed,
  /** With include_explanations: one per detection, in the order of timestamps. */
  17: optional list<Explanation> explanations,
}

/** The fitted state and what it says about itself. */
struct FitResult {
  1: optional binary state,
  /** sha256 (hex) of the state's bytes: how a serve process's cache and the model store name it. */
  2: optional string state_sha256,
  3: optional i32 state_version,
  /** Points learnt (missing values included), and the first and last of their times. */
  4: optional i64 points,
  5: optional i64 seen_start,
  6: optional i64 seen_end,
}

struct Contribution {
  1: optional string key,
  2: optional double score,
}

/** Ranked: highest score first, at most k, ties broken by key. */
struct RcaResult {
  1: optional list<Contribution> contributions,
}

struct Error {
  1: optional ErrorCode code,
  2: optional string message,
  /** The offending part of the request, e.g. "detect.values[3]", when there is one. */
  3: optional string field,
}

struct Response {
  /** "ok" or "error". */
  1: optional string status,
  2: optional string request_id,
  3: optional DetectResult detect,
  4: optional RcaResult rca,
  5: optional Error error,
  6: optional FitResult fit,
}
