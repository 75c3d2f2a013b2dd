package warden.algos.host;

import java.nio.ByteBuffer;
import java.util.List;
import java.util.OptionalLong;
import warden.algos.thrift.DetectPayload;
import warden.algos.thrift.DetectResult;
import warden.algos.thrift.FitPayload;
import warden.algos.thrift.FitResult;
import warden.algos.thrift.Request;
import warden.algos.thrift.Response;
import warden.algos.thrift.wardenConstants;

/** {@link TrainedWire} in either Thrift protocol, through the classes generated from the IDL. */
final class ThriftTrainedWire implements TrainedWire {
  private final WireFormat format;
  private final boolean explain;

  ThriftTrainedWire(WireFormat format, boolean explain) {
    this.format = format;
    this.explain = explain;
  }

  @Override
  public byte[] fitRequest(
      String algorithm, String paramsJson, List<String> dimensions, long[] times, double[] values) {
    FitPayload fit =
        new FitPayload()
            .setDimensions(dimensions)
            .setTimestamps_packed(PackedArrays.pack(times))
            .setValues_packed(PackedArrays.pack(values));
    return format.encode(envelope("fit", algorithm, paramsJson).setFit(fit));
  }

  @Override
  public byte[] detectRequest(
      TrainedModel model, String sha256, long[] times, double[] values, boolean band,
      boolean sha256Only) {
    DetectPayload detect =
        new DetectPayload()
            .setDimensions(model.dimensions())
            .setTimestamps_packed(PackedArrays.pack(times))
            .setValues_packed(PackedArrays.pack(values))
            .setReturn_state(true);
    if (sha256 != null) {
      detect.setState_sha256(sha256);
    } else {
      detect.setState(ByteBuffer.wrap(model.stateBytes()));
    }
    if (sha256Only) {
      detect.setReturn_state_sha256_only(true);
    }
    Request request = envelope("detect", model.algorithm(), model.paramsJson()).setDetect(detect);
    if (!band) {
      request.setInclude_band(false); // unset means true
    }
    if (explain) {
      request.setInclude_explanations(true); // unset means false
    }
    return format.encode(request);
  }

  static Request envelope(String interfaceName, String algorithm, String paramsJson) {
    return new Request()
        .setInterface_name(interfaceName)
        .setAlgorithm(algorithm)
        .setParams_json(paramsJson)
        .setPacked_arrays(true)
        .setEnvelope_version(wardenConstants.ENVELOPE_VERSION);
  }

  @Override
  public FitAnswer fitAnswer(byte[] bytes) {
    Response response = Responses.decode(format, bytes);
    FitResult fit = response.getFit();
    if (fit == null || !fit.isSetState() || !fit.isSetState_sha256() || !fit.isSetPoints()) {
      throw TrainedWire.broken("a fit answer without a state, its sha256 or its points");
    }
    Seen seen =
        new Seen(
            fit.getPoints(),
            fit.isSetSeen_start() ? OptionalLong.of(fit.getSeen_start()) : OptionalLong.empty(),
            fit.isSetSeen_end() ? OptionalLong.of(fit.getSeen_end()) : OptionalLong.empty());
    return new FitAnswer(fit.getState(), fit.getState_sha256(), fit.getState_version(), seen);
  }

  @Override
  public DetectAnswer detectAnswer(byte[] bytes) {
    Response response = Responses.decode(format, bytes);
    DetectResult detect = response.getDetect();
    if (detect == null || !detect.isSetState_sha256()) {
      throw TrainedWire.broken("a detect answer without the state after it");
    }
    return new DetectAnswer(
        detect.isSetTimestamps_packed()
            ? PackedArrays.longs(detect.bufferForTimestamps_packed())
            : longs(detect.getTimestamps()),
        orEmpty(doubles(detect.bufferForScores_packed(), detect.getScores())),
        doubles(detect.bufferForExpected_packed(), detect.getExpected()),
        doubles(detect.bufferForLower_packed(), detect.getLower()),
        doubles(detect.bufferForUpper_packed(), detect.getUpper()),
        detect.isSetState() ? detect.getState() : null,
        detect.getState_sha256(),
        Explanation.fromThrift(detect));
  }

  static long[] longs(List<Long> items) {
    return items == null ? new long[0] : items.stream().mapToLong(Long::longValue).toArray();
  }

  static double[] orEmpty(double[] items) {
    return items == null ? new double[0] : items;
  }

  /** Packed if set, else the list; null if neither (a band that is absent). */
  static double[] doubles(ByteBuffer packed, List<Double> items) {
    if (packed != null) {
      return PackedArrays.doubles(packed);
    }
    return items == null ? null : items.stream().mapToDouble(Double::doubleValue).toArray();
  }
}
