package warden.algos.host;

import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.time.temporal.ChronoUnit;
import java.util.regex.Pattern;

/**
 * Signed times as warden_algos/delivery/signing.py writes them: RFC 3339 UTC, whole seconds, a
 * {@code Z} ({@code 2026-12-02T04:00:00Z}). Fixed width, so they compare as text, exactly as the
 * Python side compares them: {@code now >= expires} means expired.
 */
final class UtcTime {
  static final Pattern PATTERN =
      Pattern.compile("[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z");
  private static final DateTimeFormatter FORMAT =
      DateTimeFormatter.ofPattern("uuuu-MM-dd'T'HH:mm:ss'Z'").withZone(ZoneOffset.UTC);

  private UtcTime() {}

  static String now() {
    return FORMAT.format(Instant.now().truncatedTo(ChronoUnit.SECONDS));
  }

  /** {@code when} has passed: the moment it names is now or earlier. */
  static boolean passed(String when) {
    return now().compareTo(when) >= 0;
  }
}
