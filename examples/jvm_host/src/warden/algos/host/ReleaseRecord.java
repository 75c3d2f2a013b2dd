package warden.algos.host;

import java.util.Map;

/**
 * A release record (warden_algos/delivery/records.py's {@code Release}) as far as a pull needs it, with its exact
 * bytes: those are installed verbatim as {@code release.json}, so the Python puller and this one
 * read the same document from either's install.
 */
record ReleaseRecord(
    String releaseId, String sha256, long size, String mode, Object algorithms, byte[] bytes) {

  static ReleaseRecord parse(byte[] bytes) throws PullException {
    try {
      Map<?, ?> root = MiniJson.object(MiniJson.parse(bytes), "the release record");
      Map<?, ?> manifest = MiniJson.object(root.get("manifest"), "its \"manifest\"");
      return new ReleaseRecord(
          MiniJson.string(root, "release_id"),
          MiniJson.string(manifest, "sha256"),
          MiniJson.integer(manifest, "size"),
          MiniJson.string(manifest, "mode"),
          manifest.get("algorithms"),
          bytes.clone());
    } catch (IllegalArgumentException e) {
      throw new PullException("unreadable release record: " + e.getMessage(), e);
    }
  }
}
