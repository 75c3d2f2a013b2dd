package warden.algos.host;

import java.util.List;

/**
 * What a multivariate detect answered: the rows it scored ({@code times}, of {@code columns}),
 * the anomalies among them with their scores, and for each anomaly its {@code contributions}: a
 * row of one share per column, in the order of {@code columns}, non-negative and summing to 1
 * (which columns drove it). {@code expected} is the detector's expected value of every cell, a
 * row per scored row (NaN: no opinion), or {@code null} when the detector has none or it was not
 * asked for.
 *
 * <p>{@code next} is the model after these rows for a detect with a state (a {@link MatrixStream}
 * or {@link MatrixDetector#detect(TrainedModel, Matrix)}), {@code null} for a stateless one.
 *
 * <p>{@code explanations} has one {@link Explanation} per anomaly, in the same order (its top
 * columns and their shares, largest first), when they were asked for ({@link
 * MatrixDetector#withExplanations}); {@code null} otherwise (or when the executable does not know
 * them).
 *
 * <p>The arrays are the caller's own (fresh for each answer).
 */
public record MatrixScored(
    long[] times,
    List<String> columns,
    long[] anomalies,
    double[] scores,
    double[][] contributions,
    double[][] expected,
    TrainedModel next,
    List<Explanation> explanations) {

  /** An answer without explanations. */
  public MatrixScored(
      long[] times, List<String> columns, long[] anomalies, double[] scores,
      double[][] contributions, double[][] expected, TrainedModel next) {
    this(times, columns, anomalies, scores, contributions, expected, next, null);
  }

  /** A call that had no new row to send: nothing scored, the state unchanged. */
  static MatrixScored nothing(List<String> columns, TrainedModel model) {
    return new MatrixScored(
        new long[0], columns, new long[0], new double[0], new double[0][], null, model);
  }

  public boolean hasExpected() {
    return expected != null;
  }

  public boolean hasExplanations() {
    return explanations != null;
  }

  /** The column with the largest share in anomaly {@code detection} (the first of a tie). */
  public String blamed(int detection) {
    double[] shares = contributions[detection];
    int top = 0;
    for (int c = 1; c < shares.length; c++) {
      if (shares[c] > shares[top]) {
        top = c;
      }
    }
    return columns.get(top);
  }

  /** The index of anomaly {@code time} among the anomalies, or -1 if it is not one. */
  public int detectionAt(long time) {
    for (int i = 0; i < anomalies.length; i++) {
      if (anomalies[i] == time) {
        return i;
      }
    }
    return -1;
  }
}
