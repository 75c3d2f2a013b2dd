package warden.algos.host;

import java.util.Set;
import java.util.regex.Pattern;

/**
 * What the release key says a channel runs, from when, until when (warden_algos/delivery/
 * signing.py's {@code ChannelStatement}, DSSE type {@link #TYPE}): written by every promote,
 * rollback, ship and refresh, carried in the channel's pointer and so in the plan. {@code
 * sequence} grows with every move; a node refuses one below the newest it accepted.
 */
record ChannelStatement(
    String channel,
    String releaseId,
    String recordSha256,
    String sha256,
    long size,
    String mode,
    long sequence,
    String signedAt,
    String expires) {

  static final String TYPE = "application/vnd.warden-algos.channel+json";
  /** warden_algos/executable/manifest.py's MAX_ARTIFACT_BYTES: 2 GiB. */
  static final long MAX_ARTIFACT_BYTES = 2L << 30;
  static final Pattern MODE = Pattern.compile("onedir|onefile");

  /** A verified payload as a statement; a malformed one is refused in one line. */
  static ChannelStatement parse(byte[] payload, String what) throws PullException {
    try {
      Fields fields =
          Fields.of(
              MiniJson.parseIntegers(payload),
              Set.of(
                  "channel",
                  "release_id",
                  "record_sha256",
                  "sha256",
                  "size",
                  "mode",
                  "sequence",
                  "signed_at",
                  "expires"));
      return new ChannelStatement(
          fields.string("channel", PullPlan.CHANNEL),
          fields.string("release_id", PullPlan.RELEASE_ID),
          fields.string("record_sha256", PullPlan.SHA256),
          fields.string("sha256", PullPlan.SHA256),
          fields.integer("size", 0, MAX_ARTIFACT_BYTES),
          fields.string("mode", MODE),
          fields.integer("sequence", 1, Long.MAX_VALUE),
          fields.string("signed_at", UtcTime.PATTERN),
          fields.string("expires", UtcTime.PATTERN));
    } catch (IllegalArgumentException e) {
      throw new PullException(what + " is not a valid channel statement: " + e.getMessage(), e);
    }
  }
}
