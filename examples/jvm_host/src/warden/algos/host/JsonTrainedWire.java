package warden.algos.host;

import java.math.BigDecimal;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.function.Function;
import warden.algos.thrift.ErrorCode;

/**
 * {@link TrainedWire} in the JSON form (interfaces/request.schema.json), written and read with no
 * JSON library: the requests are a few fixed shapes, numeric arrays are packed (base64 of their
 * little-endian bytes, exact both ways, no number formatting) and {@link MiniJson} reads the
 * answers.
 */
final class JsonTrainedWire implements TrainedWire {
  private static final Base64.Encoder BASE64 = Base64.getEncoder();
  private static final Base64.Decoder UNBASE64 = Base64.getDecoder();

  private final boolean explain;

  JsonTrainedWire(boolean explain) {
    this.explain = explain;
  }

  @Override
  public byte[] fitRequest(
      String algorithm, String paramsJson, List<String> dimensions, long[] times, double[] values) {
    StringBuilder out = envelope("fit", algorithm, paramsJson, true, true, false);
    out.append(",\"fit\":{");
    series(out, dimensions, times, values);
    return out.append("}}").toString().getBytes(StandardCharsets.UTF_8);
  }

  @Override
  public byte[] detectRequest(
      TrainedModel model, String sha256, long[] times, double[] values, boolean band,
      boolean sha256Only) {
    StringBuilder out =
        envelope("detect", model.algorithm(), model.paramsJson(), band, true, explain);
    out.append(",\"detect\":{");
    series(out, model.dimensions(), times, values);
    if (sha256 != null) {
      out.append(",\"state_sha256\":").append(MiniJson.quote(sha256));
    } else {
      out.append(",\"state\":\"").append(BASE64.encodeToString(model.stateBytes())).append('"');
    }
    out.append(",\"return_state\":true");
    if (sha256Only) {
      out.append(",\"return_state_sha256_only\":true");
    }
    out.append("}}");
    return out.toString().getBytes(StandardCharsets.UTF_8);
  }

  /**
   * The request up to its payload; {@code packed}: ask for packed arrays back; {@code explain}:
   * for an explanation per detection.
   */
  static StringBuilder envelope(
      String interfaceName, String algorithm, String paramsJson, boolean band, boolean packed,
      boolean explain) {
    MiniJson.object(MiniJson.parse(paramsJson), "params"); // a JSON object, or refused here
    StringBuilder out = new StringBuilder(256);
    out.append("{\"interface\":\"").append(interfaceName).append("\",\"algorithm\":")
        .append(MiniJson.quote(algorithm)).append(",\"params\":").append(paramsJson);
    if (packed) {
      out.append(",\"packed_arrays\":true");
    }
    if (!band) {
      out.append(",\"include_band\":false");
    }
    if (explain) {
      out.append(",\"include_explanations\":true");
    }
    return out;
  }

  private static void series(
      StringBuilder out, List<String> dimensions, long[] times, double[] values) {
    out.append("\"dimensions\":[");
    for (int i = 0; i < dimensions.size(); i++) {
      out.append(i == 0 ? "" : ",").append(MiniJson.quote(dimensions.get(i)));
    }
    out.append("],\"timestamps\":");
    packed(out, "int64", PackedArrays.pack(times));
    out.append(",\"values\":");
    packed(out, "float64", PackedArrays.pack(values));
  }

  static void packed(StringBuilder out, String dtype, ByteBuffer bytes) {
    out.append("{\"dtype\":\"").append(dtype).append("\",\"base64\":\"")
        .append(BASE64.encodeToString(bytes.array())).append("\"}");
  }

  @Override
  public FitAnswer fitAnswer(byte[] response) {
    return read(
        response,
        "fit",
        fit ->
            new FitAnswer(
                UNBASE64.decode(MiniJson.string(fit, "state")),
                MiniJson.string(fit, "state_sha256"),
                Math.toIntExact(MiniJson.integer(fit, "state_version")),
                new Seen(
                    MiniJson.integer(fit, "points"),
                    optional(fit, "seen_start"),
                    optional(fit, "seen_end"))));
  }

  @Override
  public DetectAnswer detectAnswer(byte[] response) {
    return read(
        response,
        "detect",
        detect -> {
          if (!detect.containsKey("state_sha256")) {
            throw new IllegalArgumentException("no state after the points");
          }
          Object state = detect.get("state"); // absent: the worker kept it (sha256 only)
          double[] scores = doubles(detect.get("scores"));
          return new DetectAnswer(
              longs(detect.get("timestamps")),
              scores == null ? new double[0] : scores,
              doubles(detect.get("expected")),
              doubles(detect.get("lower")),
              doubles(detect.get("upper")),
              state == null || state == MiniJson.NULL
                  ? null
                  : UNBASE64.decode(MiniJson.string(detect, "state")),
              MiniJson.string(detect, "state_sha256"),
              Explanation.fromJson(detect.get("explanations")));
        });
  }

  /**
   * {@code reader} applied to the answer's {@code key} object when its status is ok; the answer's
   * error as its exception if not; a document of another shape is a broken executable.
   */
  static <T> T read(byte[] response, String key, Function<Map<?, ?>, T> reader) {
    try {
      Map<?, ?> root = MiniJson.object(MiniJson.parse(response), "the response");
      String requestId = root.get("request_id") instanceof String id ? id : null;
      if ("error".equals(root.get("status"))) {
        throw error(MiniJson.object(root.get("error"), "\"error\""), requestId);
      }
      if (!"ok".equals(root.get("status"))) {
        throw new IllegalArgumentException("\"status\" is neither \"ok\" nor \"error\"");
      }
      return reader.apply(MiniJson.object(root.get(key), "\"" + key + "\""));
    } catch (IllegalArgumentException | ArithmeticException | ClassCastException e) {
      throw TrainedWire.broken(
          response.length + " bytes that are not a JSON " + key + " answer: " + e.getMessage());
    }
  }

  private static WardenException error(Map<?, ?> error, String requestId) {
    ErrorCode code = ErrorCode.INTERNAL; // also for a code this host does not know (newer)
    for (ErrorCode known : ErrorCode.values()) {
      if (known.name().equals(error.get("code"))) {
        code = known;
      }
    }
    String message = error.get("message") instanceof String text ? text : "";
    String field = error.get("field") instanceof String text ? text : null;
    return WardenException.of(code, message, requestId, field);
  }

  private static OptionalLong optional(Map<?, ?> object, String key) {
    return object.get(key) == MiniJson.NULL || !object.containsKey(key)
        ? OptionalLong.empty()
        : OptionalLong.of(MiniJson.integer(object, key));
  }

  /** A packed array ({@code {"dtype", "base64"}}) or a list of numbers. */
  static long[] longs(Object value) {
    if (value instanceof Map<?, ?> packed) {
      return PackedArrays.longs(unpacked(packed, "int64"));
    }
    List<?> items = list(value);
    long[] out = new long[items.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = ((BigDecimal) items.get(i)).longValueExact();
    }
    return out;
  }

  /** As {@link #longs}, null (JSON's, for a missing value) as NaN; null for an absent band. */
  static double[] doubles(Object value) {
    if (value == null || value == MiniJson.NULL) {
      return null;
    }
    if (value instanceof Map<?, ?> packed) {
      return PackedArrays.doubles(unpacked(packed, "float64"));
    }
    List<?> items = list(value);
    double[] out = new double[items.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = items.get(i) instanceof BigDecimal number ? number.doubleValue() : Double.NaN;
    }
    return out;
  }

  private static ByteBuffer unpacked(Map<?, ?> packed, String dtype) {
    if (!dtype.equals(packed.get("dtype"))) {
      throw new IllegalArgumentException("a packed array of " + packed.get("dtype") + ", not " + dtype);
    }
    return ByteBuffer.wrap(UNBASE64.decode(MiniJson.string(packed, "base64")));
  }

  private static List<?> list(Object value) {
    if (value instanceof List<?> items) {
      return items;
    }
    throw new IllegalArgumentException("an array that is neither packed nor a list");
  }
}
