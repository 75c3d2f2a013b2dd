package warden.algos.host;

import java.math.BigDecimal;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * One JSON object read as a strict record, the way the SDK's pydantic models read it ({@code
 * extra="forbid"}, patterns, bounds, strict integers): a field it does not know, a missing one or
 * one out of shape is an {@link IllegalArgumentException} naming the field, so a document signed
 * by a trusted key but not of the shape this SDK writes is refused, never half-read.
 */
final class Fields {
  private final Map<?, ?> object;

  private Fields(Map<?, ?> object) {
    this.object = object;
  }

  /** {@code value} as an object holding no field outside {@code known}. */
  static Fields of(Object value, Set<String> known) {
    if (!(value instanceof Map<?, ?> map)) {
      throw new IllegalArgumentException("not a JSON object");
    }
    for (Object key : map.keySet()) {
      if (!known.contains(key)) {
        throw new IllegalArgumentException(
            "unexpected field \"" + shorten(String.valueOf(key)) + "\"");
      }
    }
    return new Fields(map);
  }

  boolean has(String key) {
    return object.containsKey(key) && object.get(key) != MiniJson.NULL;
  }

  Object get(String key) {
    return object.get(key);
  }

  String string(String key, Pattern pattern) {
    if (object.get(key) instanceof String value && pattern.matcher(value).matches()) {
      return value;
    }
    throw invalid(key, "a string of the form " + pattern.pattern());
  }

  /** A string of at most {@code maxLength} characters; {@code fallback} when absent. */
  String text(String key, int maxLength, String fallback) {
    if (!object.containsKey(key)) {
      return fallback;
    }
    if (object.get(key) instanceof String value && value.length() <= maxLength) {
      return value;
    }
    throw invalid(key, "a string of at most " + maxLength + " characters");
  }

  long integer(String key, long min, long max) {
    if (object.get(key) instanceof BigDecimal value) {
      try {
        long exact = value.longValueExact();
        if (exact >= min && exact <= max) {
          return exact;
        }
      } catch (ArithmeticException e) {
        // out of range: the error below
      }
    }
    throw invalid(key, "an integer from " + min + " to " + max);
  }

  List<?> list(String key, int min, int max) {
    if (object.get(key) instanceof List<?> value && value.size() >= min && value.size() <= max) {
      return value;
    }
    throw invalid(key, "a list of " + min + " to " + max + " items");
  }

  private IllegalArgumentException invalid(String key, String expected) {
    String problem = object.containsKey(key) ? "not " : "missing; expected ";
    return new IllegalArgumentException("\"" + key + "\" is " + problem + expected);
  }

  static String shorten(String text) {
    String printable = text.codePoints().allMatch(c -> c >= 0x20 && c != 0x7f) ? text : "?";
    return printable.length() <= 80 ? printable : printable.substring(0, 80) + "...";
  }
}
