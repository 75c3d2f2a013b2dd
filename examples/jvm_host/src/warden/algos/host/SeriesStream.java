package warden.algos.host;

import java.util.Arrays;

/**
 * One series, scored as its points arrive: each call sends only the new points and the state
 * the previous call returned, and keeps the state after them ({@link #model}).
 *
 * <p>The state travels by reference when it can: a serve worker keeps the states it returned
 * ({@code --state-cache-mb}), so the call goes to that worker (when it is free) with the state's
 * sha256 alone. Any other process (another worker of the pool, a replacement after a death, a
 * one-shot process) is sent the bytes. A worker that no longer holds the state (evicted, or the
 * process restarted itself) answers {@code STATE_NOT_FOUND}; the stream resends the bytes once,
 * to the same worker, and the caller never sees it. A failed call leaves the stream as it was,
 * so the same points can be offered again.
 *
 * <p>Points already seen by the state (a leading run not after {@link Seen#end}, as a re-delivery
 * brings) are dropped rather than sent. One stream per series; its calls are serialised.
 */
public final class SeriesStream {
  private final Trainer trainer;
  private final StatePassing passing;
  private TrainedModel model;
  private WorkerId holder;
  private long calls;
  private long byReference;
  private long resent;

  SeriesStream(Trainer trainer, TrainedModel model, WorkerId holder, StatePassing passing) {
    this.trainer = trainer;
    this.model = model;
    this.holder = holder;
    this.passing = passing;
  }

  /** Scores one new point. */
  public Scored next(long time, double value) {
    return next(new long[] {time}, new double[] {value});
  }

  /** Scores the points after the ones the state has seen (times increasing). */
  public synchronized Scored next(long[] times, double[] values) {
    Trainer.requireAligned(times, values);
    int seen = model.seen().alreadySeen(times);
    if (seen == times.length) {
      return Scored.nothing(model);
    }
    if (seen > 0) {
      times = Arrays.copyOfRange(times, seen, times.length);
      values = Arrays.copyOfRange(values, seen, values.length);
    }
    boolean reference = passing == StatePassing.BY_REFERENCE;
    Trainer.Attempt attempt;
    try {
      attempt = trainer.detectOn(model, times, values, holder, reference);
    } catch (WardenException.StateNotFound missed) {
      if (!reference) {
        throw missed; // the bytes themselves cannot miss: nothing to retry
      }
      resent++;
      attempt = trainer.detectOn(model, times, values, holder, false);
    }
    calls++;
    if (attempt.byReference()) {
      byReference++;
    }
    model = attempt.scored().next();
    holder = attempt.worker();
    return attempt.scored();
  }

  /** The state after the last successful call: what to store for this series. */
  public synchronized TrainedModel model() {
    return model;
  }

  /** The serve worker that holds the current state, or null if none is known to. */
  public synchronized WorkerId holder() {
    return holder;
  }

  /** How the calls went: a STATE_NOT_FOUND costs a second round trip, a busy holder bytes. */
  public synchronized Stats stats() {
    return new Stats(calls, byReference, resent);
  }

  /**
   * {@code calls} answered; {@code byReference} of them answered with the state named by sha256
   * alone; {@code resent} references that missed and were answered by resending the bytes.
   */
  public record Stats(long calls, long byReference, long resent) {}
}
