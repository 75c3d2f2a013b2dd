package warden.algos.host;

import java.util.Set;

/**
 * What the release key says about a published release (warden_algos/delivery/signing.py's {@code
 * ReleaseStatement}, DSSE type {@link #TYPE}, at {@code releases/<id>/release.dsse.json}): the
 * sha256 of the exact {@code release.json} bytes, and the artifact's sha256, size and mode.
 */
record ReleaseStatement(
    String releaseId, String recordSha256, String sha256, long size, String mode, String signedAt) {

  static final String TYPE = "application/vnd.warden-algos.release+json";

  static ReleaseStatement parse(byte[] payload, String what) throws PullException {
    try {
      Fields fields =
          Fields.of(
              MiniJson.parseIntegers(payload),
              Set.of("release_id", "record_sha256", "sha256", "size", "mode", "signed_at"));
      return new ReleaseStatement(
          fields.string("release_id", PullPlan.RELEASE_ID),
          fields.string("record_sha256", PullPlan.SHA256),
          fields.string("sha256", PullPlan.SHA256),
          fields.integer("size", 0, ChannelStatement.MAX_ARTIFACT_BYTES),
          fields.string("mode", ChannelStatement.MODE),
          fields.string("signed_at", UtcTime.PATTERN));
    } catch (IllegalArgumentException e) {
      throw new PullException(what + " is not a valid release statement: " + e.getMessage(), e);
    }
  }
}
