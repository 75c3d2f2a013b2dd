package warden.algos.host;

/**
 * One entity's matrix, scored as its rows arrive: each call sends only the new rows and the state
 * the previous call returned, and keeps the state after them ({@link #model}).
 *
 * <p>The state travels as {@link StatePassing#BY_REFERENCE} says for a {@link SeriesStream}: by
 * sha256 to the serve worker that returned it (when it is free), as bytes to any other process,
 * and once more as bytes, to the same worker, after a {@code STATE_NOT_FOUND}. Every answer
 * carries the new state's bytes, so every {@link MatrixScored#next} is a storable model. A failed
 * call leaves the stream as it was, so the same rows can be offered again; rows already seen by
 * the state (a leading run not after {@link Seen#end}, as a re-delivery brings) are dropped
 * rather than sent. One stream per entity; its calls are serialised.
 */
public final class MatrixStream {
  private final MatrixDetector detector;
  private TrainedModel model;
  private WorkerId holder;
  private long calls;
  private long byReference;
  private long resent;

  MatrixStream(MatrixDetector detector, TrainedModel model, WorkerId holder) {
    this.detector = detector;
    this.model = model;
    this.holder = holder;
  }

  /** Scores the rows after the ones the state has seen (times increasing). */
  public synchronized MatrixScored next(Matrix rows) {
    int already = model.seen().alreadySeen(rows.timesView());
    if (already == rows.rowCount()) {
      return MatrixScored.nothing(rows.columns(), model);
    }
    Matrix fresh = already == 0 ? rows : rows.slice(already, rows.rowCount());
    MatrixDetector.Attempt attempt;
    try {
      attempt = detector.detectOn(model, fresh, holder, true);
    } catch (WardenException.StateNotFound missed) {
      resent++;
      attempt = detector.detectOn(model, fresh, holder, false);
    }
    calls++;
    if (attempt.byReference()) {
      byReference++;
    }
    model = attempt.scored().next();
    holder = attempt.worker();
    return attempt.scored();
  }

  /** The state after the last successful call: what to store for this entity. */
  public synchronized TrainedModel model() {
    return model;
  }

  /** The serve worker that holds the current state, or null if none is known to. */
  public synchronized WorkerId holder() {
    return holder;
  }

  /** How the calls went, as {@link SeriesStream.Stats} counts them (no replays, no fetches). */
  public synchronized SeriesStream.Stats stats() {
    return new SeriesStream.Stats(calls, byReference, resent, 0, 0);
  }
}
