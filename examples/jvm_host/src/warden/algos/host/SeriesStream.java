package warden.algos.host;

import java.util.Arrays;
import java.util.List;

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
 * <p>{@link StatePassing#BY_REFERENCE_SHA256_ONLY} leaves the state on the worker both ways: the
 * answer names the new state by its sha256 and carries no bytes. The stream then keeps the last
 * state bytes it was given (the fit's, or an answer's), the sha256 of the state the worker holds
 * now, and every point sent since those bytes (the replay buffer). A call to any other process,
 * or the resend after a {@code STATE_NOT_FOUND}, carries those bytes with the buffered points
 * before the new ones in one request, and asks for the bytes back (the buffer empties); the
 * caller gets the new points' results alone. A call that would take the buffer past the trainer's
 * replay limit ({@link Trainer#withReplayLimit}, default {@value #DEFAULT_REPLAY_LIMIT} points)
 * asks its worker for the bytes back instead of the sha256 alone, and so does {@link #model} when
 * the buffer is not empty: the buffer never outgrows the limit, and a model is always real bytes.
 *
 * <p>Points already seen by the state (a leading run not after {@link Seen#end}, as a re-delivery
 * brings) are dropped rather than sent. One stream per series; its calls are serialised.
 */
public final class SeriesStream {
  /** Points a {@link StatePassing#BY_REFERENCE_SHA256_ONLY} stream sends past its bytes at most. */
  public static final int DEFAULT_REPLAY_LIMIT = 1_000;

  private final Trainer trainer;
  private final StatePassing passing;
  private final int replayLimit;
  /** The last state bytes this stream holds: the current state unless points are buffered. */
  private TrainedModel model;
  /** The sha256 of the state after the last call: the one {@link #holder} keeps. */
  private String sha256;
  /** What that state has seen. */
  private Seen seen;
  /** The points sent since {@link #model}'s bytes (sha256-only: the bytes did not come back). */
  private final Replay replay = new Replay();
  private WorkerId holder;
  private long calls;
  private long byReference;
  private long resent;
  private long replayedPoints;
  private long fetches;

  SeriesStream(Trainer trainer, TrainedModel model, WorkerId holder, StatePassing passing) {
    this.trainer = trainer;
    this.model = model;
    this.sha256 = model.sha256();
    this.seen = model.seen();
    this.holder = holder;
    this.passing = passing;
    this.replayLimit = trainer.replayLimit();
  }

  /** Scores one new point. */
  public Scored next(long time, double value) {
    return next(new long[] {time}, new double[] {value});
  }

  /** Scores the points after the ones the state has seen (times increasing). */
  public synchronized Scored next(long[] times, double[] values) {
    Trainer.requireAligned(times, values);
    int already = seen.alreadySeen(times);
    if (already == times.length) {
      return Scored.nothing(replay.size == 0 ? model : null, sha256);
    }
    if (already > 0) {
      times = Arrays.copyOfRange(times, already, times.length);
      values = Arrays.copyOfRange(values, already, values.length);
    }
    if (passing == StatePassing.BY_REFERENCE_SHA256_ONLY) {
      Scored scored = keeping(times, values, replay.size + times.length > replayLimit);
      calls++;
      return scored;
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
    sha256 = model.sha256();
    seen = model.seen();
    holder = attempt.worker();
    return attempt.scored();
  }

  /**
   * The state after the last successful call, as bytes: what to store for this series. A {@link
   * StatePassing#BY_REFERENCE_SHA256_ONLY} stream with points past its bytes first asks for them
   * (one call with no new point, or the bytes it holds with those points to a worker that does not
   * hold the state), so this may fail as a call does, the stream staying as it was.
   */
  public synchronized TrainedModel model() {
    if (replay.size > 0) {
      keeping(new long[0], new double[0], true);
    }
    return model;
  }

  /** The sha256 of the state after the last successful call (the one its holder keeps). */
  public synchronized String stateSha256() {
    return sha256;
  }

  /** Points sent since the state bytes this stream holds: what a miss would resend. */
  public synchronized int pending() {
    return replay.size;
  }

  /** The serve worker that holds the current state, or null if none is known to. */
  public synchronized WorkerId holder() {
    return holder;
  }

  /** How the calls went: a STATE_NOT_FOUND costs a second round trip, a busy holder bytes. */
  public synchronized Stats stats() {
    return new Stats(calls, byReference, resent, replayedPoints, fetches);
  }

  /**
   * {@code calls} answered; {@code byReference} of them answered with the state named by sha256
   * alone; {@code resent} references that missed and were answered by resending the bytes;
   * {@code replayed} points resent from the replay buffer with those bytes; {@code fetches} calls
   * (including {@link #model}'s) that asked for the bytes back because of the replay limit or a
   * model wanted ({@link StatePassing#BY_REFERENCE_SHA256_ONLY} only).
   */
  public record Stats(long calls, long byReference, long resent, long replayed, long fetches) {}

  // ------------------------------------------------------------------------------ sha256 only

  /** What a request built for the worker chosen carried. */
  private static final class Sent {
    boolean named; // the state by sha256, to its holder; else the bytes with the buffered points
    int replayed; // buffered points sent before the new ones
    boolean askedBytes; // return_state without return_state_sha256_only
  }

  /**
   * One sha256-only call: by reference to the holder, else (or after its STATE_NOT_FOUND) the
   * bytes with the buffered points. {@code fetch}: ask for the bytes back even by reference.
   */
  private Scored keeping(long[] times, double[] values, boolean fetch) {
    Sent sent = new Sent();
    Trainer.Reply reply;
    try {
      reply = trainer.detectVia(holder, worker -> request(worker, times, values, fetch, false, sent));
    } catch (WardenException.StateNotFound missed) {
      if (!sent.named) {
        throw missed;
      }
      resent++;
      reply = trainer.detectVia(holder, worker -> request(worker, times, values, fetch, true, sent));
    }
    return adopt(reply, sent, times, values, fetch);
  }

  private byte[] request(
      WorkerId worker, long[] times, double[] values, boolean fetch, boolean bytes, Sent sent) {
    sent.named = !bytes && worker != null && worker.equals(holder);
    if (sent.named) {
      sent.replayed = 0;
      sent.askedBytes = fetch;
      return trainer.detectRequest(model, sha256, times, values, !fetch);
    }
    sent.replayed = replay.size;
    // after a replay the bytes come back, so the next miss resends only what follows them
    sent.askedBytes = fetch || replay.size > 0 || worker == null;
    return trainer.detectRequest(
        model, null, replay.times(times), replay.values(values), !sent.askedBytes);
  }

  /** The answer's results for {@code times} alone; the stream moved to the state after them. */
  private Scored adopt(
      Trainer.Reply reply, Sent sent, long[] times, double[] values, boolean fetch) {
    TrainedWire.DetectAnswer answer = reply.answer();
    if (answer.state() == null && sent.askedBytes) {
      throw TrainedWire.broken("a detect answer without the state's bytes, which it was asked for");
    }
    int covered = sent.replayed + times.length;
    double[] expected = tail(answer.expected(), covered, times.length);
    double[] lower = tail(answer.lower(), covered, times.length);
    double[] upper = tail(answer.upper(), covered, times.length);
    long[] anomalies = answer.anomalies();
    double[] scores = answer.scores();
    List<Explanation> explanations = answer.explanations(); // one per anomaly (detectVia checks)
    if (anomalies.length != scores.length) {
      throw TrainedWire.broken(anomalies.length + " anomalies with " + scores.length + " scores");
    }
    if (sent.replayed > 0) { // keep the new points' anomalies: the buffered ones were answered
      int from = 0;
      while (from < anomalies.length && (times.length == 0 || anomalies[from] < times[0])) {
        from++;
      }
      anomalies = Arrays.copyOfRange(anomalies, from, anomalies.length);
      scores = Arrays.copyOfRange(scores, from, scores.length);
      if (explanations != null) {
        explanations = explanations.subList(from, explanations.size());
      }
    }
    // the answer is whole: the stream moves on
    Seen after = seen.then(times);
    TrainedModel next = null;
    if (answer.state() != null) {
      model = model.with(answer.state(), answer.sha256(), after);
      replay.clear();
      next = model;
    } else {
      replay.append(times, values); // by reference, or the bytes with no point buffered
    }
    sha256 = answer.sha256();
    seen = after;
    holder = reply.worker();
    if (sent.named && times.length > 0) { // a call; model()'s fetch is counted in fetches alone
      byReference++;
    }
    replayedPoints += sent.replayed;
    if (fetch) {
      fetches++;
    }
    return new Scored(
        times.clone(), anomalies, scores, expected, lower, upper, next, answer.sha256(),
        explanations);
  }

  /** The last {@code keep} of a band array that covers {@code covered} points (null: no band). */
  private static double[] tail(double[] band, int covered, int keep) {
    if (band == null) {
      return null;
    }
    if (band.length != covered) {
      throw TrainedWire.broken("a band of " + band.length + " points for " + covered + " sent");
    }
    return band.length == keep ? band : Arrays.copyOfRange(band, covered - keep, covered);
  }

  /** The points sent since the stream's bytes, in order; grown by doubling. */
  private static final class Replay {
    long[] times = new long[16];
    double[] values = new double[16];
    int size;

    /** These points, then {@code more}: what a replaying request carries. */
    long[] times(long[] more) {
      if (size == 0) {
        return more;
      }
      long[] all = Arrays.copyOf(times, size + more.length);
      System.arraycopy(more, 0, all, size, more.length);
      return all;
    }

    double[] values(double[] more) {
      if (size == 0) {
        return more;
      }
      double[] all = Arrays.copyOf(values, size + more.length);
      System.arraycopy(more, 0, all, size, more.length);
      return all;
    }

    void append(long[] moreTimes, double[] moreValues) {
      if (size + moreTimes.length > times.length) {
        int capacity = Math.max(2 * times.length, size + moreTimes.length);
        times = Arrays.copyOf(times, capacity);
        values = Arrays.copyOf(values, capacity);
      }
      System.arraycopy(moreTimes, 0, times, size, moreTimes.length);
      System.arraycopy(moreValues, 0, values, size, moreValues.length);
      size += moreTimes.length;
    }

    void clear() {
      size = 0;
    }
  }
}
