package warden.algos.host;

/**
 * A pull that could not install the channel's release. Whatever was installed before is still
 * installed: every failure happens before {@code current} switches, and the switch is one rename.
 */
public final class PullException extends Exception {
  private static final long serialVersionUID = 1L;

  public PullException(String message) {
    super(message);
  }

  public PullException(String message, Throwable cause) {
    super(message, cause);
  }
}
