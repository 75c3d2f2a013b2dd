package warden.algos.host;

import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.List;
import java.util.Map;

/**
 * {@link MatrixWire} in the JSON form, written as {@link JsonTrainedWire} writes its requests:
 * {@code "columns": [...]} and {@code "matrix"} as rows of numbers ({@code null} for NaN) or
 * packed ({@code {"dtype": "float64", "base64"}} of the row-major cells), the answer read with
 * {@link MiniJson}.
 */
final class JsonMatrixWire implements MatrixWire {
  private static final Base64.Encoder BASE64 = Base64.getEncoder();
  private static final Base64.Decoder UNBASE64 = Base64.getDecoder();

  private final boolean packed;
  private final boolean explain;

  JsonMatrixWire(boolean packed, boolean explain) {
    this.packed = packed;
    this.explain = explain;
  }

  @Override
  public byte[] detectRequest(
      String algorithm, String paramsJson, List<String> dimensions, Matrix matrix, boolean band) {
    StringBuilder out =
        JsonTrainedWire.envelope("detect", algorithm, paramsJson, band, packed, explain);
    out.append(",\"detect\":{");
    rows(out, dimensions, matrix);
    return out.append("}}").toString().getBytes(StandardCharsets.UTF_8);
  }

  @Override
  public byte[] fitRequest(
      String algorithm, String paramsJson, List<String> dimensions, Matrix matrix) {
    StringBuilder out =
        JsonTrainedWire.envelope("fit", algorithm, paramsJson, true, packed, false);
    out.append(",\"fit\":{");
    rows(out, dimensions, matrix);
    return out.append("}}").toString().getBytes(StandardCharsets.UTF_8);
  }

  @Override
  public byte[] detectRequest(TrainedModel model, String sha256, Matrix rows, boolean band) {
    StringBuilder out =
        JsonTrainedWire.envelope(
            "detect", model.algorithm(), model.paramsJson(), band, packed, explain);
    out.append(",\"detect\":{");
    rows(out, model.dimensions(), rows);
    if (sha256 != null) {
      out.append(",\"state_sha256\":").append(MiniJson.quote(sha256));
    } else {
      out.append(",\"state\":\"").append(BASE64.encodeToString(model.stateBytes())).append('"');
    }
    out.append(",\"return_state\":true}}");
    return out.toString().getBytes(StandardCharsets.UTF_8);
  }

  private void rows(StringBuilder out, List<String> dimensions, Matrix matrix) {
    out.append("\"dimensions\":");
    strings(out, dimensions);
    out.append(",\"columns\":");
    strings(out, matrix.columns());
    out.append(",\"timestamps\":");
    long[] times = matrix.timesView();
    if (packed) {
      JsonTrainedWire.packed(out, "int64", PackedArrays.pack(times));
      out.append(",\"matrix\":");
      JsonTrainedWire.packed(out, "float64", matrix.packed());
      return;
    }
    out.append('[');
    for (int i = 0; i < times.length; i++) {
      out.append(i == 0 ? "" : ",").append(times[i]);
    }
    out.append("],\"matrix\":[");
    double[] cells = matrix.cellsView();
    int width = matrix.columnCount();
    for (int r = 0; r < matrix.rowCount(); r++) {
      out.append(r == 0 ? "[" : ",[");
      for (int c = 0; c < width; c++) {
        double value = cells[r * width + c];
        // Double.toString reads back as the same double: lists are as exact as packed
        out.append(c == 0 ? "" : ",").append(Double.isNaN(value) ? "null" : Double.toString(value));
      }
      out.append(']');
    }
    out.append(']');
  }

  private static void strings(StringBuilder out, List<String> items) {
    out.append('[');
    for (int i = 0; i < items.size(); i++) {
      out.append(i == 0 ? "" : ",").append(MiniJson.quote(items.get(i)));
    }
    out.append(']');
  }

  @Override
  public Answer detectAnswer(byte[] response, int width) {
    return JsonTrainedWire.read(
        response,
        "detect",
        detect -> {
          double[] scores = JsonTrainedWire.doubles(detect.get("scores"));
          Object state = detect.get("state");
          return new Answer(
              JsonTrainedWire.longs(detect.get("timestamps")),
              scores == null ? new double[0] : scores,
              matrix(detect.get("contributions"), width),
              matrix(detect.get("expected_matrix"), width),
              state == null || state == MiniJson.NULL
                  ? null
                  : UNBASE64.decode(MiniJson.string(detect, "state")),
              detect.get("state_sha256") instanceof String sha256 ? sha256 : null,
              Explanation.fromJson(detect.get("explanations")));
        });
  }

  /** Rows of {@code width} numbers (null: NaN), or packed; null when absent. */
  private static double[][] matrix(Object value, int width) {
    if (value == null || value == MiniJson.NULL) {
      return null;
    }
    if (value instanceof Map<?, ?>) {
      return Matrix.reshape(JsonTrainedWire.doubles(value), width);
    }
    if (!(value instanceof List<?> items)) {
      throw new IllegalArgumentException("a matrix that is neither packed nor a list of rows");
    }
    double[][] rows = new double[items.size()][];
    for (int r = 0; r < rows.length; r++) {
      rows[r] = JsonTrainedWire.doubles(items.get(r));
      if (rows[r] == null || rows[r].length != width) {
        throw new IllegalArgumentException(
            "a matrix row " + r + " of " + (rows[r] == null ? "no" : rows[r].length)
                + " values for " + width + " columns");
      }
    }
    return rows;
  }
}
