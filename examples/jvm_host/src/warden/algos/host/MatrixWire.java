package warden.algos.host;

import java.util.List;

/**
 * The multivariate requests (detect a matrix; fit on one; detect the rows after a state, asking
 * for the state after them) and the detect answer, in one wire format, the arrays as lists or
 * packed both ways ({@code packed_arrays}). A fit on a matrix answers as a fit on one series
 * does: {@link TrainedWire#fitAnswer} reads it.
 */
interface MatrixWire {
  /** With {@code explain}, detect requests ask for an explanation per detection. */
  static MatrixWire of(WireFormat format, boolean packed, boolean explain) {
    return format.isThrift()
        ? new ThriftMatrixWire(format, packed, explain)
        : new JsonMatrixWire(packed, explain);
  }

  /** A stateless detect; with {@code band} the answer may carry expected_matrix. */
  byte[] detectRequest(
      String algorithm, String paramsJson, List<String> dimensions, Matrix matrix, boolean band);

  byte[] fitRequest(String algorithm, String paramsJson, List<String> dimensions, Matrix matrix);

  /**
   * Rows after {@code model}'s state, asking for the state after them: the state named by {@code
   * sha256} when that is not null (a serve worker holds it), else {@code model}'s bytes.
   */
  byte[] detectRequest(TrainedModel model, String sha256, Matrix rows, boolean band);

  /**
   * The detect's answer to a request of {@code width} columns, or the {@link WardenException} of
   * its error; an answer that cannot be read is {@link TrainedWire#broken}.
   */
  Answer detectAnswer(byte[] response, int width);

  /**
   * A multivariate detect's answer as the wire has it: {@code contributions}, {@code expected}
   * and {@code explanations} are null when absent, and so are {@code state} and {@code sha256}
   * for a stateless detect.
   */
  record Answer(
      long[] anomalies,
      double[] scores,
      double[][] contributions,
      double[][] expected,
      byte[] state,
      String sha256,
      List<Explanation> explanations) {}
}
