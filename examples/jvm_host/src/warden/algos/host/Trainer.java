package warden.algos.host;

import java.time.Duration;
import java.util.List;
import java.util.function.Function;

/**
 * Trained algorithms from Java: fit a series' history into a {@link TrainedModel}, score new
 * points with it, and stream a series call after call ({@link SeriesStream}).
 *
 * <pre>
 * Trainer trainer = Trainer.pooled(pool, Duration.ofSeconds(5));
 * SeriesStream stream = trainer.fitStream("ksigma", "{}", dimensions, historyTimes, historyValues);
 * Scored scored = stream.next(time, value);   // one new point; the state stays on the worker
 * store(stream.model().state());              // bytes to persist per series
 *
 * Scored why = trainer.withExplanations().detect(model, times, values);
 * why.explanations().get(0).reason();         // one Explanation per anomaly, when asked for
 * </pre>
 *
 * A stream made with {@link StatePassing#BY_REFERENCE_SHA256_ONLY} has no state bytes in its
 * answers either (only the new state's sha256): its {@code model()} fetches them when asked, and
 * a miss or another worker is sent the last bytes it holds with the points since ({@link
 * SeriesStream}).
 *
 * Over a {@link WorkerPool} (any number of threads) or a {@link OneShotInvoker}, in any of the
 * executable's wire formats; every array is sent and received packed. Errors are the {@link
 * WardenException} of their code ({@link WardenException.IncompatibleState} for a state fitted
 * with other params, for instance). Thread-safe: it holds no series' state itself.
 */
public final class Trainer {
  private final Route route;
  private final TrainedWire wire;
  private final Duration deadline;
  private final boolean band;
  private final int replayLimit;
  private final boolean explain;

  private Trainer(
      Route route, Duration deadline, boolean band, int replayLimit, boolean explain) {
    this.route = route;
    this.wire = TrainedWire.of(route.format(), explain);
    this.deadline = deadline;
    this.band = band;
    this.replayLimit = replayLimit;
    this.explain = explain;
  }

  private Trainer(Route route, Duration deadline, boolean band) {
    this(route, deadline, band, SeriesStream.DEFAULT_REPLAY_LIMIT, false);
  }

  /** Through serve workers: a stream's state stays cached on the worker that returned it. */
  public static Trainer pooled(WorkerPool pool, Duration deadline) {
    return new Trainer(pool, deadline, true);
  }

  /** One process per call: nothing is kept between calls, so states always travel as bytes. */
  public static Trainer oneShot(OneShotInvoker invoker, Duration deadline) {
    return new Trainer(invoker, deadline, true);
  }

  /** The same, but detect answers carry no band (less to encode, send and decode per call). */
  public Trainer withoutBand() {
    return new Trainer(route, deadline, false, replayLimit, explain);
  }

  /**
   * The same, but detect answers (its streams' too) carry an {@link Explanation} per anomaly,
   * {@link Scored#explanations}: the value against the band in band units, and a sentence. Off by
   * default: the executable does not compute them unless asked.
   */
  public Trainer withExplanations() {
    return new Trainer(route, deadline, band, replayLimit, true);
  }

  /**
   * The same, but its {@link StatePassing#BY_REFERENCE_SHA256_ONLY} streams keep at most {@code
   * points} points sent since the last state bytes they were given (default {@value
   * SeriesStream#DEFAULT_REPLAY_LIMIT}): the call that would pass it asks for the bytes back. A
   * miss or a change of worker resends at most that many points; a larger bound means fewer
   * state transfers.
   */
  public Trainer withReplayLimit(int points) {
    if (points < 0) {
      throw new IllegalArgumentException("a replay limit of " + points + " points");
    }
    return new Trainer(route, deadline, band, points, explain);
  }

  int replayLimit() {
    return replayLimit;
  }

  /** Learns {@code algorithm} (its params as a JSON object) from one series' history. */
  public TrainedModel fit(
      String algorithm, String paramsJson, List<String> dimensions, long[] times, double[] values) {
    return fitOn(algorithm, paramsJson, dimensions, times, values).model();
  }

  /** Fits, then streams from there; the first call names the state to the worker that fitted it. */
  public SeriesStream fitStream(
      String algorithm, String paramsJson, List<String> dimensions, long[] times, double[] values) {
    return fitStream(algorithm, paramsJson, dimensions, times, values, StatePassing.BY_REFERENCE);
  }

  /** The same, passing the state as {@code passing} says. */
  public SeriesStream fitStream(
      String algorithm, String paramsJson, List<String> dimensions, long[] times, double[] values,
      StatePassing passing) {
    Held fitted = fitOn(algorithm, paramsJson, dimensions, times, values);
    return new SeriesStream(this, fitted.model(), fitted.worker(), passing);
  }

  /** Streams a series from a stored model: its bytes go with the first call, references after. */
  public SeriesStream stream(TrainedModel model) {
    return stream(model, StatePassing.BY_REFERENCE);
  }

  public SeriesStream stream(TrainedModel model, StatePassing passing) {
    return new SeriesStream(this, model, null, passing);
  }

  /**
   * Scores points after the ones {@code model} has seen, sending the state's bytes (one call on
   * its own; a series scored call after call is a {@link #stream}). The answer carries the model
   * after these points.
   */
  public Scored detect(TrainedModel model, long[] times, double[] values) {
    return detectOn(model, times, values, null, false).scored();
  }

  /** A fitted model and the serve worker that now holds its state ({@code null}: none does). */
  private record Held(TrainedModel model, WorkerId worker) {}

  private Held fitOn(
      String algorithm, String paramsJson, List<String> dimensions, long[] times, double[] values) {
    requireAligned(times, values);
    byte[] request = wire.fitRequest(algorithm, paramsJson, dimensions, times, values);
    Served served = route.send(null, worker -> request, deadline);
    TrainedWire.FitAnswer answer = wire.fitAnswer(served.response());
    checkSha256(answer.state(), answer.sha256());
    TrainedModel model =
        new TrainedModel(
            algorithm, paramsJson, dimensions, answer.state(), answer.sha256(),
            answer.stateVersion(), answer.seen());
    return new Held(model, served.worker());
  }

  /** A detect's answer, the serve worker that now holds its state, and how the state went. */
  record Attempt(Scored scored, WorkerId worker, boolean byReference) {}

  /**
   * One detect with {@code model}'s state: named by sha256 if {@code byReference} and the worker
   * chosen is {@code holder} (preferred when free), else as bytes. The answer carries the bytes.
   */
  Attempt detectOn(
      TrainedModel model, long[] times, double[] values, WorkerId holder, boolean byReference) {
    requireAligned(times, values);
    boolean[] named = new boolean[1];
    Reply reply =
        detectVia(
            holder,
            worker -> {
              named[0] = byReference && worker != null && worker.equals(holder);
              return wire.detectRequest(model, times, values, named[0], band);
            });
    TrainedWire.DetectAnswer answer = reply.answer();
    if (answer.state() == null) {
      throw TrainedWire.broken("a detect answer without the state's bytes, which it was asked for");
    }
    TrainedModel next = model.after(times, answer.state(), answer.sha256());
    Scored scored =
        new Scored(
            times.clone(), answer.anomalies(), answer.scores(), answer.expected(), answer.lower(),
            answer.upper(), next, next.sha256(), answer.explanations());
    return new Attempt(scored, reply.worker(), named[0]);
  }

  /**
   * A detect's answer (its state's bytes, if any, checked against its sha256; an explanation per
   * anomaly, if any) and who gave it.
   */
  record Reply(TrainedWire.DetectAnswer answer, WorkerId worker) {}

  /**
   * One detect whose request depends on the process chosen to answer it ({@code preferred} when
   * it is free): {@code request} gets that process's worker id ({@code null}: a one-shot process).
   */
  Reply detectVia(WorkerId preferred, Function<WorkerId, byte[]> request) {
    Served served = route.send(preferred, request, deadline);
    TrainedWire.DetectAnswer answer = wire.detectAnswer(served.response());
    if (answer.state() != null) {
      checkSha256(answer.state(), answer.sha256());
    } else if (!Sha256.isHex(answer.sha256())) {
      throw TrainedWire.broken("a state_sha256 that is not 64 hex digits: " + answer.sha256());
    }
    Explanation.forDetections(answer.explanations(), answer.anomalies().length);
    return new Reply(answer, served.worker());
  }

  /** A detect request in this trainer's wire format and band setting (see {@link TrainedWire}). */
  byte[] detectRequest(
      TrainedModel model, String sha256, long[] times, double[] values, boolean sha256Only) {
    return wire.detectRequest(model, sha256, times, values, band, sha256Only);
  }

  /** Did the state arrive whole? A model is stored and resent: it must be the bytes named. */
  private static void checkSha256(byte[] state, String sha256) {
    if (!Sha256.of(state).equals(sha256)) {
      throw TrainedWire.broken(
          "a state of " + state.length + " bytes whose sha256 is not the " + sha256 + " it named");
    }
  }

  static void requireAligned(long[] times, double[] values) {
    if (times.length != values.length) {
      throw new IllegalArgumentException(
          times.length + " times but " + values.length + " values: one value per time");
    }
  }
}
