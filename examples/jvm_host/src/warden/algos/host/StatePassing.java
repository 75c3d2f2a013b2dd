package warden.algos.host;

/** How a {@link SeriesStream} hands its state to the executable on each call. */
public enum StatePassing {
  /**
   * By sha256 to the serve worker that returned the state (it keeps recent ones, {@code
   * --state-cache-mb}); the bytes themselves to any other process, and once more after a {@code
   * STATE_NOT_FOUND}. The fast path: a request of a few dozen bytes.
   */
  BY_REFERENCE,
  /**
   * Always the bytes: for executables that cache nothing ({@code --state-cache-mb 0}), where
   * every reference would miss and cost a second round trip.
   */
  BY_BYTES
}
