package warden.algos.host;

import java.time.Duration;
import java.util.List;

/**
 * Trained algorithms from Java: fit a series' history into a {@link TrainedModel}, score new
 * points with it, and stream a series call after call ({@link SeriesStream}).
 *
 * <pre>
 * Trainer trainer = Trainer.pooled(pool, Duration.ofSeconds(5));
 * SeriesStream stream = trainer.fitStream("ksigma", "{}", dimensions, historyTimes, historyValues);
 * Scored scored = stream.next(time, value);   // one new point; the state stays on the worker
 * store(stream.model().state());              // bytes to persist per series
 * </pre>
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

  private Trainer(Route route, Duration deadline, boolean band) {
    this.route = route;
    this.wire = TrainedWire.of(route.format());
    this.deadline = deadline;
    this.band = band;
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
    return new Trainer(route, deadline, false);
  }

  /** Learns {@code algorithm} (its params as a JSON object) from one series' history. */
  public TrainedModel fit(
      String algorithm, String paramsJson, List<String> dimensions, long[] times, double[] values) {
    return fitOn(algorithm, paramsJson, dimensions, times, values).model();
  }

  /** Fits, then streams from there; the first call names the state to the worker that fitted it. */
  public SeriesStream fitStream(
      String algorithm, String paramsJson, List<String> dimensions, long[] times, double[] values) {
    Held fitted = fitOn(algorithm, paramsJson, dimensions, times, values);
    return new SeriesStream(this, fitted.model(), fitted.worker(), StatePassing.BY_REFERENCE);
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
   * chosen is {@code holder} (preferred when free), else as bytes.
   */
  Attempt detectOn(
      TrainedModel model, long[] times, double[] values, WorkerId holder, boolean byReference) {
    requireAligned(times, values);
    boolean[] named = new boolean[1];
    Served served =
        route.send(
            holder,
            worker -> {
              named[0] = byReference && worker != null && worker.equals(holder);
              return wire.detectRequest(model, times, values, named[0], band);
            },
            deadline);
    TrainedWire.DetectAnswer answer = wire.detectAnswer(served.response());
    checkSha256(answer.state(), answer.sha256());
    TrainedModel next = model.after(times, answer.state(), answer.sha256());
    Scored scored =
        new Scored(
            times.clone(), answer.anomalies(), answer.scores(), answer.expected(), answer.lower(),
            answer.upper(), next);
    return new Attempt(scored, served.worker(), named[0]);
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
