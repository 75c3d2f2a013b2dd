package warden.algos.host;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Two renderings of a document (JSON text, or a Thrift struct's {@code toString()}) compared up to
 * the last bits of their floating-point numbers: everything but the floats must be the same text
 * (so integers, such as timestamps, strings, field names, NaN and null, are exact), and each pair
 * of floats, in order, within a relative tolerance. What a vector whose numbers depend on the
 * processor (case.json {@code numbers_rtol}) is held to.
 */
final class RoundedText {
  /** A number; a float is one with a fraction or an exponent (JSON and Java always write one). */
  private static final Pattern NUMBER =
      Pattern.compile("-?\\d+(\\.\\d+)?([eE][+-]?\\d+)?");

  private RoundedText() {}

  /** What differs (empty: the same up to {@code rtol}); a few entries at most. */
  static List<String> differences(String got, String want, double rtol) {
    List<String> problems = new ArrayList<>();
    List<String> gotFloats = new ArrayList<>();
    List<String> wantFloats = new ArrayList<>();
    String gotText = skeleton(got, gotFloats);
    String wantText = skeleton(want, wantFloats);
    if (!gotText.equals(wantText)) {
      problems.add("the documents differ beyond their floats");
      return problems;
    }
    for (int i = 0; i < wantFloats.size() && problems.size() < 5; i++) {
      double a = Double.parseDouble(gotFloats.get(i));
      double b = Double.parseDouble(wantFloats.get(i));
      if (Math.abs(a - b) > rtol * Math.max(Math.abs(a), Math.abs(b))) {
        problems.add("float " + i + ": " + a + " is not within " + rtol + " of " + b);
      }
    }
    return problems;
  }

  /** {@code text} with every float replaced by a marker, the floats collected in order. */
  private static String skeleton(String text, List<String> floats) {
    Matcher matcher = NUMBER.matcher(text);
    StringBuilder out = new StringBuilder();
    while (matcher.find()) {
      boolean isFloat = matcher.group(1) != null || matcher.group(2) != null;
      if (isFloat) {
        floats.add(matcher.group());
      }
      matcher.appendReplacement(out, isFloat ? "<float>" : Matcher.quoteReplacement(matcher.group()));
    }
    matcher.appendTail(out);
    return out.toString();
  }

  /** Self-check, run by the vectors scenario: the tolerance forgives only the last bits. */
  static List<String> selfCheck() {
    List<String> failures = new ArrayList<>();
    String want = "{\"t\":[1700150000],\"s\":[7.571243818143932],\"e\":[null,49.87814498551287]}";
    if (!differences(
            "{\"t\":[1700150000],\"s\":[7.571243818143935],\"e\":[null,49.87814498551288]}",
            want, 1e-9).isEmpty()) {
      failures.add("last-bit differences are not forgiven");
    }
    for (String wrong : List.of(
        "{\"t\":[1700150060],\"s\":[7.571243818143932],\"e\":[null,49.87814498551287]}",
        "{\"t\":[1700150000],\"s\":[7.5712438],\"e\":[null,49.87814498551287]}",
        "{\"t\":[1700150000],\"s\":[7.571243818143932],\"e\":[49.87814498551287]}",
        "{\"t\":[1700150000],\"s\":[7.571243818143932],\"e\":[1.0,49.87814498551287]}")) {
      if (differences(wrong, want, 1e-9).isEmpty()) {
        failures.add("forgiven, though it differs: " + wrong);
      }
    }
    return failures;
  }
}
