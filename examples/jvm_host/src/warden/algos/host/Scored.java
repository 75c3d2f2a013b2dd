package warden.algos.host;

/**
 * What a detect with a state answered: the points it scored ({@code times}), the anomalies among
 * them with their scores, the band of every scored point ({@code null} when the algorithm has none
 * or it was not asked for), and the model after these points, for the next call.
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
    TrainedModel next) {

  /** A call that had no new point to send: nothing scored, the model unchanged. */
  static Scored nothing(TrainedModel model) {
    return new Scored(new long[0], new long[0], new double[0], null, null, null, model);
  }

  public boolean hasBand() {
    return expected != null;
  }
}
