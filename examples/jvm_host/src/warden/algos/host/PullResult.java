package warden.algos.host;

import java.nio.file.Path;

/**
 * What a pull did: {@code current} (the installed artifact already had the channel's sha256;
 * nothing was downloaded) or {@code installed} (switched to a new release). The executable is
 * addressed through the {@code current} link, so a host that starts it later gets whatever is
 * current then.
 */
public record PullResult(
    String status, String releaseId, Path executable, long downloadedBytes, int attempts) {

  /** The one line {@link PullCli} prints: {@code status release_id bytes attempts}. */
  public String line() {
    return status + " " + releaseId + " " + downloadedBytes + " " + attempts;
  }
}
