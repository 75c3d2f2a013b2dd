package warden.algos.host;

import java.math.BigDecimal;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Just enough JSON to read a release record and a {@code version --json} answer: the host may
 * assume no JSON library. A whole (small, strict) parser rather than a search for {@code
 * "sha256"} in the text: the installed check must read {@code manifest.sha256}, not the first
 * {@code sha256} that happens to appear (an algorithm's description, a nested field), and a
 * document that is not valid JSON (a truncated write, a duplicated key) must read as "not
 * installed", never as a match.
 *
 * <p>Objects become maps (a repeated key is an error), arrays lists, numbers {@link BigDecimal}s
 * without trailing zeros (so {@code 1.0} equals {@code 1}, as in Python), {@code null} {@link
 * #NULL}. {@link #parseIntegers} reads signed documents and the node's own state, whose every
 * number is an integer: there {@code 1.0} is refused, as pydantic's strict integers refuse it.
 */
final class MiniJson {
  static final Object NULL =
      new Object() {
        @Override
        public String toString() {
          return "null";
        }
      };

  private static final Pattern NUMBER =
      Pattern.compile("-?(0|[1-9][0-9]*)(\\.[0-9]+)?([eE][+-]?[0-9]+)?");
  private static final Pattern HEX4 = Pattern.compile("[0-9a-fA-F]{4}");
  private static final int MAX_DEPTH = 64;

  private final String text;
  private final boolean integersOnly;
  private int at;

  private MiniJson(String text, boolean integersOnly) {
    this.text = text;
    this.integersOnly = integersOnly;
  }

  /** The document in {@code bytes} (strict UTF-8); {@link IllegalArgumentException} if invalid. */
  static Object parse(byte[] bytes) {
    return parse(utf8(bytes), false);
  }

  static Object parse(String text) {
    return parse(text, false);
  }

  /** Like {@link #parse(byte[])}, but a number with a fraction or an exponent is an error. */
  static Object parseIntegers(byte[] bytes) {
    return parse(utf8(bytes), true);
  }

  private static String utf8(byte[] bytes) {
    try {
      return StandardCharsets.UTF_8.newDecoder().decode(ByteBuffer.wrap(bytes)).toString();
    } catch (CharacterCodingException e) {
      throw new IllegalArgumentException("JSON: not UTF-8", e);
    }
  }

  private static Object parse(String text, boolean integersOnly) {
    MiniJson parser = new MiniJson(text, integersOnly);
    parser.space();
    Object value = parser.value(0);
    parser.space();
    if (parser.at != text.length()) {
      throw parser.error("text after the document");
    }
    return value;
  }

  /** {@code value} as an object, or an error naming {@code what}. */
  static Map<?, ?> object(Object value, String what) {
    if (value instanceof Map<?, ?> map) {
      return map;
    }
    throw new IllegalArgumentException(what + " is not a JSON object");
  }

  static String string(Map<?, ?> object, String key) {
    if (object.get(key) instanceof String value) {
      return value;
    }
    throw new IllegalArgumentException("\"" + key + "\" is missing or not a string");
  }

  static long integer(Map<?, ?> object, String key) {
    if (object.get(key) instanceof BigDecimal value) {
      try {
        return value.longValueExact();
      } catch (ArithmeticException e) {
        // falls through to the error below
      }
    }
    throw new IllegalArgumentException("\"" + key + "\" is missing or not an integer");
  }

  /**
   * {@code value} as a JSON string literal. What this puller writes (the channel state) holds only
   * validated names and times, but a quote or a control character must still never break the file.
   */
  static String quote(String value) {
    StringBuilder out = new StringBuilder(value.length() + 2).append('"');
    for (int i = 0; i < value.length(); i++) {
      char c = value.charAt(i);
      if (c == '"' || c == '\\') {
        out.append('\\').append(c);
      } else if (c < 0x20 || c == 0x7f) {
        out.append(String.format("\\u%04x", (int) c));
      } else {
        out.append(c);
      }
    }
    return out.append('"').toString();
  }

  private Object value(int depth) {
    if (depth > MAX_DEPTH) {
      throw error("nested too deeply");
    }
    if (at >= text.length()) {
      throw error("unexpected end");
    }
    return switch (text.charAt(at)) {
      case '{' -> object(depth);
      case '[' -> array(depth);
      case '"' -> string();
      case 't' -> literal("true", Boolean.TRUE);
      case 'f' -> literal("false", Boolean.FALSE);
      case 'n' -> literal("null", NULL);
      default -> number();
    };
  }

  private Map<String, Object> object(int depth) {
    Map<String, Object> members = new LinkedHashMap<>();
    at++;
    space();
    if (peek('}')) {
      return members;
    }
    while (true) {
      space();
      if (!peek('"')) {
        throw error("expected a key");
      }
      at--; // string() starts at the quote
      String key = string();
      space();
      expect(':');
      space();
      if (members.put(key, value(depth + 1)) != null) {
        throw error("repeated key \"" + key + "\"");
      }
      space();
      if (peek('}')) {
        return members;
      }
      expect(',');
    }
  }

  private List<Object> array(int depth) {
    List<Object> items = new ArrayList<>();
    at++;
    space();
    if (peek(']')) {
      return items;
    }
    while (true) {
      space();
      items.add(value(depth + 1));
      space();
      if (peek(']')) {
        return items;
      }
      expect(',');
    }
  }

  private String string() {
    StringBuilder out = new StringBuilder();
    at++; // the opening quote
    while (true) {
      if (at >= text.length()) {
        throw error("unterminated string");
      }
      char c = text.charAt(at++);
      if (c == '"') {
        return out.toString();
      }
      if (c < 0x20) {
        throw error("control character in a string");
      }
      if (c != '\\') {
        out.append(c);
        continue;
      }
      if (at >= text.length()) {
        throw error("unterminated escape");
      }
      char escaped = text.charAt(at++);
      switch (escaped) {
        case '"', '\\', '/' -> out.append(escaped);
        case 'b' -> out.append('\b');
        case 'f' -> out.append('\f');
        case 'n' -> out.append('\n');
        case 'r' -> out.append('\r');
        case 't' -> out.append('\t');
        case 'u' -> {
          if (at + 4 > text.length() || !HEX4.matcher(text.substring(at, at + 4)).matches()) {
            throw error("bad \\u escape");
          }
          out.append((char) Integer.parseInt(text.substring(at, at + 4), 16));
          at += 4;
        }
        default -> throw error("bad escape \\" + escaped);
      }
    }
  }

  private BigDecimal number() {
    Matcher matcher = NUMBER.matcher(text).region(at, text.length());
    if (!matcher.lookingAt()) {
      throw error("unexpected character '" + text.charAt(at) + "'");
    }
    if (integersOnly && (matcher.group(2) != null || matcher.group(3) != null)) {
      throw error("a number that is not an integer");
    }
    at = matcher.end();
    return new BigDecimal(matcher.group()).stripTrailingZeros();
  }

  private Object literal(String word, Object value) {
    if (!text.startsWith(word, at)) {
      throw error("unexpected character '" + text.charAt(at) + "'");
    }
    at += word.length();
    return value;
  }

  private boolean peek(char c) {
    if (at < text.length() && text.charAt(at) == c) {
      at++;
      return true;
    }
    return false;
  }

  private void expect(char c) {
    if (!peek(c)) {
      throw error("expected '" + c + "'");
    }
  }

  private void space() {
    while (at < text.length() && " \t\r\n".indexOf(text.charAt(at)) >= 0) {
      at++;
    }
  }

  private IllegalArgumentException error(String message) {
    return new IllegalArgumentException("JSON: " + message + " at offset " + at);
  }
}
