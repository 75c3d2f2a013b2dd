package warden.algos.host;

/** How a {@link SeriesStream} hands its state to the executable on each call. */
public enum StatePassing {
  /**
   * By sha256 to the serve worker that returned the state (it keeps recent ones, {@code
   * --state-cache-mb}); the bytes themselves to any other process, and once more after a {@code
   * STATE_NOT_FOUND}. The request is a few dozen bytes, but every answer carries the new state's
   * bytes (which Java decodes and hashes), so every {@link Scored#next} is a storable model.
   */
  BY_REFERENCE,
  /**
   * By sha256 both ways ({@code return_state_sha256_only}): a call sends the new points and the
   * sha256 of the state its worker holds, and the answer carries only the new state's sha256, so
   * neither direction carries a state while the stream stays on its worker. The stream keeps the
   * last bytes it was given and every point sent since (at most {@link
   * Trainer#withReplayLimit}, default {@value SeriesStream#DEFAULT_REPLAY_LIMIT}); a worker that
   * no longer holds the state ({@code STATE_NOT_FOUND}), or any other worker (its own is busy or
   * was replaced), is sent those bytes with those points before the new ones, which gives the same
   * detections and the same state. {@link Scored#next} is {@code null} when no bytes came back;
   * {@link SeriesStream#model} fetches them (one call) when the stream has none current.
   */
  BY_REFERENCE_SHA256_ONLY,
  /**
   * Always the bytes: for executables that cache nothing ({@code --state-cache-mb 0}), where
   * every reference would miss and cost a second round trip.
   */
  BY_BYTES
}
