package warden.algos.host;

import java.io.IOException;
import java.io.InputStream;
import java.io.StringReader;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Properties;
import java.util.regex.Pattern;

/**
 * What to install, as {@code warden-algos release presign --channel C --properties} prints it: the
 * channel's pointer (release id, mode, sha256, size) and two presigned GET URLs, one for the
 * artifact and one for its release record. The JVM needs no AWS SDK and no credentials: whoever
 * made the plan signed the URLs.
 *
 * <p>The release id becomes a folder name under {@code DEST/releases}, so it is held to the same
 * pattern warden_algos/delivery/records.py enforces (no slash, no leading dot: no way out of that folder).
 *
 * <p>When the release is signed the plan also carries the two signed statements, each as base64
 * of its DSSE envelope's JSON: {@code channel_statement} (the pointer's) and {@code
 * release_signature} (the release's {@code release.dsse.json}); null when absent. A node that
 * pins keys ({@link ReleaseTrust}) checks them before it downloads anything; each is bounded here
 * ({@link Envelope#MAX_ENVELOPE_BASE64}) and the plan file itself at {@link #MAX_PLAN_BYTES}.
 */
public record PullPlan(
    String channel,
    String releaseId,
    String mode,
    String sha256,
    long size,
    URI url,
    URI releaseUrl,
    String channelStatement,
    String releaseSignature) {

  static final Pattern RELEASE_ID = Pattern.compile("[0-9A-Za-z][0-9A-Za-z._+-]{0,127}");
  static final Pattern SHA256 = Pattern.compile("[0-9a-f]{64}");
  /** warden_algos/delivery/records.py's CHANNEL: prod, staging, test/alice. */
  static final Pattern CHANNEL =
      Pattern.compile("[a-z0-9][a-z0-9._-]{0,62}(/[a-z0-9][a-z0-9._-]{0,62})?");
  static final int MAX_PLAN_BYTES = 1 << 20;

  public PullPlan {
    require(RELEASE_ID.matcher(releaseId).matches(), "release_id " + releaseId + " is not valid");
    require(SHA256.matcher(sha256).matches(), "sha256 must be 64 lower-case hex digits");
    require(mode.equals("onedir") || mode.equals("onefile"), "mode must be onedir or onefile");
    require(size >= 0, "size must not be negative");
    for (URI each : new URI[] {url, releaseUrl}) {
      require(
          "http".equals(each.getScheme()) || "https".equals(each.getScheme()),
          "URLs must be http(s)");
    }
    for (String envelope : new String[] {channelStatement, releaseSignature}) {
      require(
          envelope == null || envelope.length() <= Envelope.MAX_ENVELOPE_BASE64,
          "a signed statement is over " + Envelope.MAX_ENVELOPE_BASE64 + " characters");
    }
  }

  public static PullPlan read(Path file) throws IOException, PullException {
    byte[] raw;
    try (InputStream in = Files.newInputStream(file)) {
      raw = in.readNBytes(MAX_PLAN_BYTES + 1);
    }
    if (raw.length > MAX_PLAN_BYTES) {
      throw new PullException("plan " + file + ": over " + MAX_PLAN_BYTES + " bytes");
    }
    Properties properties = new Properties();
    try {
      properties.load(new StringReader(new String(raw, StandardCharsets.UTF_8)));
    } catch (IllegalArgumentException e) { // a malformed unicode escape
      throw new PullException("plan " + file + ": " + e.getMessage(), e);
    }
    return of(properties, file.toString());
  }

  public static PullPlan of(Properties properties, String source) throws PullException {
    try {
      return new PullPlan(
          properties.getProperty("channel", "?"),
          get(properties, "release_id"),
          get(properties, "mode"),
          get(properties, "sha256"),
          Long.parseLong(get(properties, "size")),
          URI.create(get(properties, "url")),
          URI.create(get(properties, "release_url")),
          optional(properties, "channel_statement"),
          optional(properties, "release_signature"));
    } catch (IllegalArgumentException e) { // NumberFormatException too
      throw new PullException("plan " + source + ": " + e.getMessage(), e);
    }
  }

  private static String get(Properties properties, String key) {
    String value = properties.getProperty(key);
    require(value != null && !value.isBlank(), "no " + key);
    return value.strip();
  }

  private static String optional(Properties properties, String key) {
    String value = properties.getProperty(key);
    return value == null || value.isBlank() ? null : value.strip();
  }

  private static void require(boolean condition, String message) {
    if (!condition) {
      throw new IllegalArgumentException(message);
    }
  }
}
