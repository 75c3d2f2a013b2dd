package warden.algos.host;

import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Function;
import warden.algos.thrift.DetectResult;

/**
 * Why one detection fired, as the executable explains it when asked ({@link
 * Trainer#withExplanations}, {@link MatrixDetector#withExplanations}; on the wire {@code
 * include_explanations}, answered as {@code detect.explanations}, one per detection in the order
 * of the detections; serialization/warden.thrift, struct Explanation).
 *
 * <p>A detection stands for a run of consecutive flagged points, reported at its first: {@code
 * peak} is the time of the run's most anomalous point, {@code last} of its last, {@code points}
 * how many it has. {@code actual} is the value at the peak and {@code expected}, {@code lower},
 * {@code upper} the band there; {@code bandUnits} is (actual - expected) in half-widths of the
 * band on that side (1 at its edge, negative below; without {@code expected}, from the band's
 * middle). Any of these is {@code null} when the detector does not know it. {@code members} are
 * an ensemble's members that flagged the run, {@code context} what else the detector knew (a
 * seasonal model's {@code periods_s} and {@code phase_s}; sorted by name), {@code columns} and
 * {@code shares} a multivariate detection's top columns and their shares, largest first (paired
 * up, so the same length); all empty when there are none. {@code reason} is the same in one
 * sentence.
 *
 * <p>Immutable, with value equality: the same explanation read from JSON or either Thrift protocol
 * is {@code equals}.
 */
public record Explanation(
    Long peak,
    Long last,
    Long points,
    Double actual,
    Double expected,
    Double lower,
    Double upper,
    Double bandUnits,
    List<String> members,
    Map<String, String> context,
    List<String> columns,
    List<Double> shares,
    String reason) {

  /**
   * The wire names of the fields (JSON keys), in the order of their Thrift ids: field {@code i}
   * has id {@code i + 1}. Thrift is read by id, so one reader serves both forms (and the Java
   * names the Thrift compiler gives the fields do not matter).
   */
  static final List<String> FIELDS =
      List.of(
          "peak", "last", "points", "actual", "expected", "lower", "upper", "band_units", "members",
          "context", "columns", "shares", "reason");

  public Explanation {
    members = members == null ? List.of() : List.copyOf(members);
    context =
        context == null || context.isEmpty()
            ? Collections.emptySortedMap()
            : Collections.unmodifiableSortedMap(new TreeMap<>(context));
    columns = columns == null ? List.of() : List.copyOf(columns);
    shares = shares == null ? List.of() : List.copyOf(shares);
    reason = reason == null ? "" : reason;
    if (columns.size() != shares.size()) {
      throw new IllegalArgumentException(
          "an explanation with " + columns.size() + " columns and " + shares.size()
              + " shares: they must pair up");
    }
  }

  /** The top column's name and share ({@code null} when the explanation names no column). */
  public String topColumn() {
    return columns.isEmpty() ? null : columns.get(0);
  }

  // ----------------------------------------------------------------------------------- reading

  /**
   * The explanations of a Thrift answer, or {@code null} when it carries none (not asked for, or
   * an executable that does not know them); a malformed one is {@link TrainedWire#broken}.
   */
  public static List<Explanation> fromThrift(DetectResult detect) {
    if (detect == null || !detect.isSetExplanations()) {
      return null;
    }
    List<Explanation> out = new ArrayList<>(detect.getExplanationsSize());
    try {
      for (warden.algos.thrift.Explanation one : detect.getExplanations()) {
        if (one == null) {
          throw new IllegalArgumentException("a null explanation");
        }
        out.add(
            fromFields(
                name -> {
                  warden.algos.thrift.Explanation._Fields field =
                      warden.algos.thrift.Explanation._Fields.findByThriftId(
                          (short) (FIELDS.indexOf(name) + 1));
                  return one.isSet(field) ? one.getFieldValue(field) : null;
                }));
      }
    } catch (IllegalArgumentException | ClassCastException e) {
      throw TrainedWire.broken("an explanation this host cannot read: " + e.getMessage());
    }
    return List.copyOf(out);
  }

  /**
   * The explanations of a JSON answer's {@code detect.explanations} ({@link MiniJson}'s reading of
   * it), or {@code null} when absent; {@link IllegalArgumentException} if malformed (the JSON
   * readers turn it into {@link TrainedWire#broken}).
   */
  static List<Explanation> fromJson(Object value) {
    if (value == null || value == MiniJson.NULL) {
      return null;
    }
    if (!(value instanceof List<?> items)) {
      throw new IllegalArgumentException("\"explanations\" is not a list");
    }
    List<Explanation> out = new ArrayList<>(items.size());
    for (Object item : items) {
      Map<?, ?> object = MiniJson.object(item, "an explanation");
      out.add(fromFields(object::get));
    }
    return List.copyOf(out);
  }

  /**
   * {@code explanations} when there are none or one per detection; an answer with another count
   * breaks the contract ({@link TrainedWire#broken}).
   */
  static List<Explanation> forDetections(List<Explanation> explanations, int detections) {
    if (explanations != null && explanations.size() != detections) {
      throw TrainedWire.broken(
          explanations.size() + " explanations for " + detections
              + " detections (one per detection)");
    }
    return explanations;
  }

  /** An explanation from its fields by wire name: JSON's values or Thrift's (null: unset). */
  private static Explanation fromFields(Function<String, Object> field) {
    return new Explanation(
        integer(field, "peak"),
        integer(field, "last"),
        integer(field, "points"),
        real(field, "actual"),
        real(field, "expected"),
        real(field, "lower"),
        real(field, "upper"),
        real(field, "band_units"),
        strings(field, "members"),
        context(field),
        strings(field, "columns"),
        reals(field, "shares"),
        reason(field.apply("reason")));
  }

  private static String reason(Object value) {
    return value == null || value == MiniJson.NULL ? "" : text(value, "reason");
  }

  private static Long integer(Function<String, Object> field, String name) {
    Object value = field.apply(name);
    if (value == null || value == MiniJson.NULL) {
      return null;
    }
    if (value instanceof Long number) {
      return number;
    }
    if (value instanceof BigDecimal number) {
      try {
        return number.longValueExact();
      } catch (ArithmeticException e) {
        // falls through to the error below
      }
    }
    throw new IllegalArgumentException("an explanation's \"" + name + "\" is not an integer");
  }

  private static Double real(Function<String, Object> field, String name) {
    Object value = field.apply(name);
    if (value == null || value == MiniJson.NULL) {
      return null;
    }
    return number(value, name);
  }

  private static Double number(Object value, String name) {
    if (value instanceof Double number) {
      return number;
    }
    if (value instanceof BigDecimal number) {
      return number.doubleValue();
    }
    throw new IllegalArgumentException("an explanation's \"" + name + "\" is not a number");
  }

  private static String text(Object value, String name) {
    if (value instanceof String text) {
      return text;
    }
    throw new IllegalArgumentException("an explanation's \"" + name + "\" is not a string");
  }

  private static List<?> list(Function<String, Object> field, String name) {
    Object value = field.apply(name);
    if (value == null || value == MiniJson.NULL) {
      return List.of();
    }
    if (value instanceof List<?> items) {
      return items;
    }
    throw new IllegalArgumentException("an explanation's \"" + name + "\" is not a list");
  }

  private static List<String> strings(Function<String, Object> field, String name) {
    List<String> out = new ArrayList<>();
    for (Object item : list(field, name)) {
      out.add(text(item, name));
    }
    return out;
  }

  private static List<Double> reals(Function<String, Object> field, String name) {
    List<Double> out = new ArrayList<>();
    for (Object item : list(field, name)) {
      out.add(number(item, name));
    }
    return out;
  }

  private static Map<String, String> context(Function<String, Object> field) {
    Object value = field.apply("context");
    if (value == null || value == MiniJson.NULL) {
      return Map.of();
    }
    if (!(value instanceof Map<?, ?> map)) {
      throw new IllegalArgumentException("an explanation's \"context\" is not an object");
    }
    Map<String, String> out = new TreeMap<>();
    for (Map.Entry<?, ?> entry : map.entrySet()) {
      out.put(text(entry.getKey(), "context"), text(entry.getValue(), "context"));
    }
    return out;
  }
}
