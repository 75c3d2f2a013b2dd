package warden.algos.host;

import java.nio.ByteBuffer;
import java.util.List;

/**
 * A fitted state and what it belongs to: the algorithm and the params (JSON text) it was fitted
 * with, the series' dimensions, the state's bytes and their sha256, and the span it has seen.
 *
 * <p>The bytes are opaque to Java (the executable decodes and checks them) and are what a
 * platform stores per series. Immutable, so one model may be shared by threads and kept as the
 * last good state while a call with it is in flight.
 */
public final class TrainedModel {
  private final String algorithm;
  private final String paramsJson;
  private final List<String> dimensions;
  private final byte[] state;
  private final String sha256;
  private final int stateVersion;
  private final Seen seen;

  TrainedModel(
      String algorithm,
      String paramsJson,
      List<String> dimensions,
      byte[] state,
      String sha256,
      int stateVersion,
      Seen seen) {
    this.algorithm = algorithm;
    this.paramsJson = paramsJson;
    this.dimensions = List.copyOf(dimensions);
    this.state = state;
    this.sha256 = sha256;
    this.stateVersion = stateVersion;
    this.seen = seen;
  }

  /**
   * A model stored earlier (its state bytes as a fit or a detect returned them). The sha256 is
   * computed here; the executable checks everything else when the state is used.
   */
  public static TrainedModel restore(
      String algorithm, String paramsJson, List<String> dimensions, byte[] state, int stateVersion,
      Seen seen) {
    byte[] copy = state.clone();
    return new TrainedModel(
        algorithm, paramsJson, dimensions, copy, Sha256.of(copy), stateVersion, seen);
  }

  public String algorithm() {
    return algorithm;
  }

  public String paramsJson() {
    return paramsJson;
  }

  public List<String> dimensions() {
    return dimensions;
  }

  /** A copy of the state's bytes, to store. */
  public byte[] state() {
    return state.clone();
  }

  /** The state's bytes without a copy, read-only. */
  public ByteBuffer stateBuffer() {
    return ByteBuffer.wrap(state).asReadOnlyBuffer();
  }

  int stateSize() {
    return state.length;
  }

  byte[] stateBytes() {
    return state; // never handed out: the class is immutable
  }

  /** Hex sha256 of the state's bytes: how a serve worker's cache (and a model store) names it. */
  public String sha256() {
    return sha256;
  }

  /**
   * The state version the fit reported. A detect answers no version, so a model after a detect
   * carries its fit's (an executable that migrated the state on the way still reads both).
   */
  public int stateVersion() {
    return stateVersion;
  }

  public Seen seen() {
    return seen;
  }

  /** The model after {@code times} were scored with it: the state the executable returned. */
  TrainedModel after(long[] times, byte[] nextState, String nextSha256) {
    return new TrainedModel(
        algorithm, paramsJson, dimensions, nextState, nextSha256, stateVersion, seen.then(times));
  }

  /** This series' model with another state: one the executable returned, having seen {@code seen}. */
  TrainedModel with(byte[] nextState, String nextSha256, Seen nextSeen) {
    return new TrainedModel(
        algorithm, paramsJson, dimensions, nextState, nextSha256, stateVersion, nextSeen);
  }

  @Override
  public String toString() {
    return algorithm + " " + paramsJson + " " + dimensions + ": " + state.length + " bytes, sha256 "
        + sha256.substring(0, 12) + "..., " + seen;
  }
}
