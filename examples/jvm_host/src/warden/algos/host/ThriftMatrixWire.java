package warden.algos.host;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import warden.algos.thrift.DetectPayload;
import warden.algos.thrift.DetectResult;
import warden.algos.thrift.FitPayload;
import warden.algos.thrift.Request;

/**
 * {@link MatrixWire} in either Thrift protocol: {@code columns} with {@code matrix}
 * (list&lt;list&lt;double&gt;&gt;, a list per row) or {@code matrix_packed}, through the classes
 * generated from the IDL.
 */
final class ThriftMatrixWire implements MatrixWire {
  private final WireFormat format;
  private final boolean packed;
  private final boolean explain;

  ThriftMatrixWire(WireFormat format, boolean packed, boolean explain) {
    this.format = format;
    this.packed = packed;
    this.explain = explain;
  }

  @Override
  public byte[] detectRequest(
      String algorithm, String paramsJson, List<String> dimensions, Matrix matrix, boolean band) {
    Request request = envelope("detect", algorithm, paramsJson, band, explain);
    return format.encode(request.setDetect(detect(dimensions, matrix)));
  }

  @Override
  public byte[] fitRequest(
      String algorithm, String paramsJson, List<String> dimensions, Matrix matrix) {
    FitPayload fit = new FitPayload().setDimensions(dimensions).setColumns(matrix.columns());
    if (packed) {
      fit.setTimestamps_packed(PackedArrays.pack(matrix.timesView()))
          .setMatrix_packed(matrix.packed());
    } else {
      fit.setTimestamps(boxed(matrix.timesView())).setMatrix(lists(matrix));
    }
    return format.encode(envelope("fit", algorithm, paramsJson, true, false).setFit(fit));
  }

  @Override
  public byte[] detectRequest(TrainedModel model, String sha256, Matrix rows, boolean band) {
    DetectPayload detect = detect(model.dimensions(), rows).setReturn_state(true);
    if (sha256 != null) {
      detect.setState_sha256(sha256);
    } else {
      detect.setState(ByteBuffer.wrap(model.stateBytes()));
    }
    Request request = envelope("detect", model.algorithm(), model.paramsJson(), band, explain);
    return format.encode(request.setDetect(detect));
  }

  private DetectPayload detect(List<String> dimensions, Matrix matrix) {
    DetectPayload detect =
        new DetectPayload().setDimensions(dimensions).setColumns(matrix.columns());
    if (packed) {
      return detect
          .setTimestamps_packed(PackedArrays.pack(matrix.timesView()))
          .setMatrix_packed(matrix.packed());
    }
    return detect.setTimestamps(boxed(matrix.timesView())).setMatrix(lists(matrix));
  }

  private Request envelope(
      String interfaceName, String algorithm, String paramsJson, boolean band, boolean explain) {
    Request request = ThriftTrainedWire.envelope(interfaceName, algorithm, paramsJson);
    if (!packed) {
      request.unsetPacked_arrays(); // unset means false: lists back
    }
    if (!band) {
      request.setInclude_band(false); // unset means true
    }
    if (explain) {
      request.setInclude_explanations(true); // unset means false
    }
    return request;
  }

  private static List<Long> boxed(long[] items) {
    return Arrays.stream(items).boxed().toList();
  }

  private static List<List<Double>> lists(Matrix matrix) {
    double[] cells = matrix.cellsView();
    int width = matrix.columnCount();
    List<List<Double>> rows = new ArrayList<>(matrix.rowCount());
    for (int r = 0; r < matrix.rowCount(); r++) {
      List<Double> row = new ArrayList<>(width);
      for (int c = 0; c < width; c++) {
        row.add(cells[r * width + c]);
      }
      rows.add(row);
    }
    return rows;
  }

  @Override
  public Answer detectAnswer(byte[] bytes, int width) {
    DetectResult detect = Responses.decode(format, bytes).getDetect();
    if (detect == null) {
      throw TrainedWire.broken("an ok response without a detect result");
    }
    try {
      return new Answer(
          detect.isSetTimestamps_packed()
              ? PackedArrays.longs(detect.bufferForTimestamps_packed())
              : ThriftTrainedWire.longs(detect.getTimestamps()),
          ThriftTrainedWire.orEmpty(
              ThriftTrainedWire.doubles(detect.bufferForScores_packed(), detect.getScores())),
          matrix(detect.bufferForContributions_packed(), detect.getContributions(), width),
          matrix(detect.bufferForExpected_matrix_packed(), detect.getExpected_matrix(), width),
          detect.isSetState() ? detect.getState() : null,
          detect.getState_sha256(),
          Explanation.fromThrift(detect));
    } catch (IllegalArgumentException e) {
      throw TrainedWire.broken("a detect result of another shape: " + e.getMessage());
    }
  }

  /** Packed if set, else the rows (each of {@code width}); null if neither. */
  private static double[][] matrix(ByteBuffer packed, List<List<Double>> rows, int width) {
    if (packed != null) {
      return Matrix.reshape(PackedArrays.doubles(packed), width);
    }
    if (rows == null) {
      return null;
    }
    double[][] out = new double[rows.size()][];
    for (int r = 0; r < out.length; r++) {
      List<Double> row = rows.get(r);
      if (row == null || row.size() != width) {
        throw new IllegalArgumentException(
            "a matrix row " + r + " of " + (row == null ? 0 : row.size()) + " values for "
                + width + " columns");
      }
      out[r] = row.stream().mapToDouble(Double::doubleValue).toArray();
    }
    return out;
  }
}
