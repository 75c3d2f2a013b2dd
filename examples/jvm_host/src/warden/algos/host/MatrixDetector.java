package warden.algos.host;

import java.time.Duration;
import java.util.List;
import java.util.function.Function;

/**
 * Multivariate detection from Java: a {@link Matrix} of named columns scored at once (which moment
 * breaks the columns' usual relation, and which columns drove it), stateless or trained.
 *
 * <pre>
 * MatrixDetector detector = MatrixDetector.pooled(pool, Duration.ofSeconds(5));
 * Matrix rows = Matrix.of(times, List.of("inlet", "outlet"), values);   // values[row][column]
 * MatrixScored scored = detector.detect("one_class_svm", "{}", dimensions, rows);
 * scored.blamed(0);                                // the column with the largest share
 *
 * MatrixStream stream = detector.fitStream("one_class_svm", "{}", dimensions, history);
 * MatrixScored next = stream.next(newRows);        // rows after the state; it stays on the worker
 * store(stream.model().state());
 *
 * detector.withExplanations().detect("one_class_svm", "{}", dimensions, rows)
 *     .explanations().get(0).columns();          // the columns that drove the first anomaly
 * </pre>
 *
 * Over a {@link WorkerPool} or a {@link OneShotInvoker}, in any of the executable's wire formats;
 * arrays are packed both ways unless {@link #withLists}. A fit on a matrix gives a {@link
 * TrainedModel} as a fit on one series does (its {@link Seen} counts rows); the state records its
 * columns, and rows of other columns are refused with {@link WardenException.IncompatibleState}.
 * An algorithm without a matrix form is {@link WardenException.UnknownAlgorithm}; other errors are
 * the {@link WardenException} of their code. Thread-safe: it holds no series' state itself.
 */
public final class MatrixDetector {
  private final Route route;
  private final Duration deadline;
  private final boolean packed;
  private final boolean band;
  private final boolean explain;
  private final MatrixWire wire;
  private final TrainedWire fits;

  private MatrixDetector(
      Route route, Duration deadline, boolean packed, boolean band, boolean explain) {
    this.route = route;
    this.deadline = deadline;
    this.packed = packed;
    this.band = band;
    this.explain = explain;
    this.wire = MatrixWire.of(route.format(), packed, explain);
    this.fits = TrainedWire.of(route.format());
  }

  /** Through serve workers: a stream's state stays cached on the worker that returned it. */
  public static MatrixDetector pooled(WorkerPool pool, Duration deadline) {
    return new MatrixDetector(pool, deadline, true, true, false);
  }

  /** One process per call: states always travel as bytes. */
  public static MatrixDetector oneShot(OneShotInvoker invoker, Duration deadline) {
    return new MatrixDetector(invoker, deadline, true, true, false);
  }

  /** The same, sending and receiving lists instead of packed arrays (the same answers). */
  public MatrixDetector withLists() {
    return new MatrixDetector(route, deadline, false, band, explain);
  }

  /** The same, but answers carry no expected matrix (less to encode, send and decode). */
  public MatrixDetector withoutExpected() {
    return new MatrixDetector(route, deadline, packed, false, explain);
  }

  /**
   * The same, but detect answers (its streams' too) carry an {@link Explanation} per detection,
   * {@link MatrixScored#explanations}: its top columns and their shares, and a sentence.
   */
  public MatrixDetector withExplanations() {
    return new MatrixDetector(route, deadline, packed, band, true);
  }

  /** Scores every row of {@code matrix} with {@code algorithm} (its params as a JSON object). */
  public MatrixScored detect(
      String algorithm, String paramsJson, List<String> dimensions, Matrix matrix) {
    byte[] request = wire.detectRequest(algorithm, paramsJson, dimensions, matrix, band);
    Served served = route.send(null, worker -> request, deadline);
    MatrixWire.Answer answer =
        checked(wire.detectAnswer(served.response(), matrix.columnCount()), matrix);
    return scored(matrix, answer, null);
  }

  /** Learns {@code algorithm} from the rows of {@code matrix}: the state records its columns. */
  public TrainedModel fit(
      String algorithm, String paramsJson, List<String> dimensions, Matrix matrix) {
    return fitOn(algorithm, paramsJson, dimensions, matrix).model();
  }

  /** Fits, then streams from there; the first call names the state to the worker that fitted it. */
  public MatrixStream fitStream(
      String algorithm, String paramsJson, List<String> dimensions, Matrix history) {
    Held fitted = fitOn(algorithm, paramsJson, dimensions, history);
    return new MatrixStream(this, fitted.model(), fitted.worker());
  }

  /** Streams from a stored model: its bytes go with the first call, references after. */
  public MatrixStream stream(TrainedModel model) {
    return new MatrixStream(this, model, null);
  }

  /**
   * Scores rows after the ones {@code model} has seen, sending the state's bytes (one call on its
   * own; rows arriving call after call are a {@link MatrixStream}). The answer's {@code next} is
   * the model after these rows.
   */
  public MatrixScored detect(TrainedModel model, Matrix rows) {
    return detectOn(model, rows, null, false).scored();
  }

  /** A fitted model and the serve worker that now holds its state ({@code null}: none does). */
  private record Held(TrainedModel model, WorkerId worker) {}

  private Held fitOn(String algorithm, String paramsJson, List<String> dimensions, Matrix matrix) {
    byte[] request = wire.fitRequest(algorithm, paramsJson, dimensions, matrix);
    Served served = route.send(null, worker -> request, deadline);
    TrainedWire.FitAnswer answer = fits.fitAnswer(served.response());
    checkSha256(answer.state(), answer.sha256());
    TrainedModel model =
        new TrainedModel(
            algorithm, paramsJson, dimensions, answer.state(), answer.sha256(),
            answer.stateVersion(), answer.seen());
    return new Held(model, served.worker());
  }

  /** A detect's answer, the serve worker that now holds its state, and how the state went. */
  record Attempt(MatrixScored scored, WorkerId worker, boolean byReference) {}

  /**
   * One detect with {@code model}'s state: named by sha256 if {@code byReference} and the worker
   * chosen is {@code holder} (preferred when free), else as bytes. The answer carries the bytes.
   */
  Attempt detectOn(TrainedModel model, Matrix rows, WorkerId holder, boolean byReference) {
    boolean[] named = new boolean[1];
    Function<WorkerId, byte[]> request =
        worker -> {
          named[0] = byReference && worker != null && worker.equals(holder);
          return wire.detectRequest(model, named[0] ? model.sha256() : null, rows, band);
        };
    Served served = route.send(holder, request, deadline);
    MatrixWire.Answer answer =
        checked(wire.detectAnswer(served.response(), rows.columnCount()), rows);
    if (answer.state() == null || answer.sha256() == null) {
      throw TrainedWire.broken("a detect answer without the state's bytes, which it was asked for");
    }
    checkSha256(answer.state(), answer.sha256());
    TrainedModel next = model.after(rows.timesView(), answer.state(), answer.sha256());
    return new Attempt(scored(rows, answer, next), served.worker(), named[0]);
  }

  /** The answer, if it pairs up: a row of shares per anomaly, an expected row per row sent. */
  private static MatrixWire.Answer checked(MatrixWire.Answer answer, Matrix sent) {
    int found = answer.anomalies().length;
    double[][] shares = answer.contributions();
    if (shares == null && found == 0) {
      shares = new double[0][];
    }
    if (answer.scores().length != found || shares == null || shares.length != found) {
      throw TrainedWire.broken(
          found + " anomalies with " + answer.scores().length + " scores and "
              + (shares == null ? "no" : String.valueOf(shares.length)) + " rows of contributions");
    }
    double[][] expected = answer.expected();
    if (expected != null && expected.length != sent.rowCount()) {
      throw TrainedWire.broken(
          "an expected matrix of " + expected.length + " rows for " + sent.rowCount() + " sent");
    }
    return new MatrixWire.Answer(
        answer.anomalies(), answer.scores(), shares, expected, answer.state(), answer.sha256(),
        Explanation.forDetections(answer.explanations(), found));
  }

  private static MatrixScored scored(Matrix rows, MatrixWire.Answer answer, TrainedModel next) {
    return new MatrixScored(
        rows.times(), rows.columns(), answer.anomalies(), answer.scores(), answer.contributions(),
        answer.expected(), next, answer.explanations());
  }

  /** Did the state arrive whole? A model is stored and resent: it must be the bytes named. */
  private static void checkSha256(byte[] state, String sha256) {
    if (!Sha256.of(state).equals(sha256)) {
      throw TrainedWire.broken(
          "a state of " + state.length + " bytes whose sha256 is not the " + sha256 + " it named");
    }
  }
}
