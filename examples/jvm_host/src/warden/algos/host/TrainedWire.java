package warden.algos.host;

import java.util.List;

/**
 * The two requests of a trained algorithm (fit; detect with a state, asking for the state after)
 * and their answers, in one wire format. Arrays travel packed both ways: primitive arrays in
 * Java, no per-element work in the executable.
 */
interface TrainedWire {
  /** The Thrift classes for either protocol; for JSON, the JSON form with packed arrays. */
  static TrainedWire of(WireFormat format) {
    return of(format, false);
  }

  /** The same; with {@code explain}, detect requests ask for an explanation per detection. */
  static TrainedWire of(WireFormat format, boolean explain) {
    return format.isThrift()
        ? new ThriftTrainedWire(format, explain)
        : new JsonTrainedWire(explain);
  }

  byte[] fitRequest(
      String algorithm, String paramsJson, List<String> dimensions, long[] times, double[] values);

  /** With the state's sha256 instead of its bytes when {@code byReference}. */
  default byte[] detectRequest(
      TrainedModel model, long[] times, double[] values, boolean byReference, boolean band) {
    return detectRequest(model, byReference ? model.sha256() : null, times, values, band, false);
  }

  /**
   * Points after a state, asking for the state after them: the state named by {@code sha256}
   * when that is not null (a serve worker holds it; {@code model} then only gives the algorithm,
   * params and dimensions), else {@code model}'s bytes. With {@code sha256Only} the worker keeps
   * the state after and answers its sha256 alone ({@code return_state_sha256_only}).
   */
  byte[] detectRequest(
      TrainedModel model, String sha256, long[] times, double[] values, boolean band,
      boolean sha256Only);

  /** The fit's answer, or the {@link WardenException} of its error. */
  FitAnswer fitAnswer(byte[] response);

  /** The detect's answer, or the {@link WardenException} of its error. */
  DetectAnswer detectAnswer(byte[] response);

  /** An answer that breaks the contract: the executable is not one this host can talk to. */
  static WardenException.WorkerDied broken(String what) {
    return new WardenException.WorkerDied("the executable answered " + what, null);
  }

  /** A fit's answer as the wire has it. */
  record FitAnswer(byte[] state, String sha256, int stateVersion, Seen seen) {}

  /**
   * A detect's answer as the wire has it; the band arrays are null when absent, and so is {@code
   * state} when the worker kept it and answered only its sha256, and {@code explanations} when
   * the answer has none.
   */
  record DetectAnswer(
      long[] anomalies,
      double[] scores,
      double[] expected,
      double[] lower,
      double[] upper,
      byte[] state,
      String sha256,
      List<Explanation> explanations) {}
}
