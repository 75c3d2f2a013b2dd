package warden.algos.host;

import java.util.List;

/**
 * What a detect with a state answered: the points it scored ({@code times}), the anomalies among
 * them with their scores, the band of every scored point ({@code null} when the algorithm has none
 * or it was not asked for), the model after these points, for the next call, and its sha256.
 *
 * <p>{@code next} is {@code null} when the state stayed on the serve worker and only its sha256
 * came back ({@link StatePassing#BY_REFERENCE_SHA256_ONLY}): {@link SeriesStream#model} then has
 * the bytes. {@code stateSha256} is always the sha256 of the state after these points.
 *
 * <p>{@code explanations} has one {@link Explanation} per anomaly, in the same order, when they
 * were asked for ({@link Trainer#withExplanations}); {@code null} otherwise (or when the
 * executable does not know them).
 *
 * <p>The arrays are the caller's own (fresh for each answer).
 */
public record Scored(
    long[] times,
    long[] anomalies,
    double[] scores,
    double[] expected,
    double[] lower,
    double[] upper,
    TrainedModel next,
    String stateSha256,
    List<Explanation> explanations) {

  /** An answer without explanations. */
  public Scored(
      long[] times, long[] anomalies, double[] scores, double[] expected, double[] lower,
      double[] upper, TrainedModel next, String stateSha256) {
    this(times, anomalies, scores, expected, lower, upper, next, stateSha256, null);
  }

  /** An answer that brought the state's bytes back: {@code next} is the model after them. */
  Scored(
      long[] times, long[] anomalies, double[] scores, double[] expected, double[] lower,
      double[] upper, TrainedModel next) {
    this(times, anomalies, scores, expected, lower, upper, next, next.sha256(), null);
  }

  /** A call that had no new point to send: nothing scored, the state unchanged. */
  static Scored nothing(TrainedModel model, String stateSha256) {
    return new Scored(new long[0], new long[0], new double[0], null, null, null, model, stateSha256);
  }

  public boolean hasBand() {
    return expected != null;
  }

  public boolean hasExplanations() {
    return explanations != null;
  }
}
