package warden.algos.host;

import warden.algos.thrift.ErrorCode;
import warden.algos.thrift.Response;

/**
 * Everything a call can fail with, one subclass per error code of the contract.
 *
 * <p>The executable's answers ({@code status = "error"}) become the nested code classes; failures
 * the host observes itself (a worker that died, a deadline the host enforced) are {@link
 * HostFailure}s that still carry the closest code, so a caller can branch on {@link #code()} alone
 * or catch precisely: {@link DeadlineExceeded} is a {@link Timeout}, for instance.
 */
public abstract class WardenException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  private final ErrorCode code;
  private final String requestId;
  private final String field;

  protected WardenException(ErrorCode code, String message, String requestId, String field) {
    super(code + ": " + message + (field == null ? "" : " [field " + field + "]"));
    this.code = code;
    this.requestId = requestId;
    this.field = field;
  }

  protected WardenException(ErrorCode code, String message, Throwable cause) {
    super(code + ": " + message, cause);
    this.code = code;
    this.requestId = null;
    this.field = null;
  }

  public ErrorCode code() {
    return code;
  }

  /** The request id the response echoed, when there was a response. */
  public String requestId() {
    return requestId;
  }

  /** The offending part of the request (e.g. "detect.values[3]"), when the executable named one. */
  public String field() {
    return field;
  }

  /**
   * The response itself when it is a success; the typed exception for its error code otherwise. A
   * code this host does not know (a newer executable) is INTERNAL, as the IDL's evolution rules say.
   */
  public static Response raiseIfError(Response response) {
    if ("ok".equals(response.getStatus())) {
      return response;
    }
    warden.algos.thrift.Error error = response.getError();
    if (error == null) {
      throw new Internal(
          "response has status '" + response.getStatus() + "' and no error", response.getRequest_id(), null);
    }
    String message = error.getMessage() == null ? "" : error.getMessage();
    ErrorCode code = error.getCode() == null ? ErrorCode.INTERNAL : error.getCode();
    throw of(code, message, response.getRequest_id(), error.getField());
  }

  /**
   * The exception for an error answer, whichever wire format carried it (a Thrift Error, or the
   * JSON form's {@code error} object).
   */
  public static WardenException of(ErrorCode code, String message, String requestId, String field) {
    return switch (code) {
      case INVALID_INPUT -> new InvalidInput(message, requestId, field);
      case UNKNOWN_ALGORITHM -> new UnknownAlgorithm(message, requestId, field);
      case INVALID_PARAMS -> new InvalidParams(message, requestId, field);
      case ALGORITHM_FAILED -> new AlgorithmFailed(message, requestId, field);
      case TIMEOUT -> new Timeout(message, requestId, field);
      case INCOMPATIBLE_STATE -> new IncompatibleState(message, requestId, field);
      case STATE_NOT_FOUND -> new StateNotFound(message, requestId, field);
      default -> new Internal(message, requestId, field);
    };
  }

  /** The request was malformed or its data broke the contract (lengths, order, types). */
  public static class InvalidInput extends WardenException {
    private static final long serialVersionUID = 1L;

    public InvalidInput(String message, String requestId, String field) {
      super(ErrorCode.INVALID_INPUT, message, requestId, field);
    }
  }

  /** No algorithm of that name is registered in this executable. */
  public static class UnknownAlgorithm extends WardenException {
    private static final long serialVersionUID = 1L;

    public UnknownAlgorithm(String message, String requestId, String field) {
      super(ErrorCode.UNKNOWN_ALGORITHM, message, requestId, field);
    }
  }

  /** The params did not validate against the algorithm's declared schema. */
  public static class InvalidParams extends WardenException {
    private static final long serialVersionUID = 1L;

    public InvalidParams(String message, String requestId, String field) {
      super(ErrorCode.INVALID_PARAMS, message, requestId, field);
    }
  }

  /** The algorithm raised, or returned something that breaks the result contract. */
  public static class AlgorithmFailed extends WardenException {
    private static final long serialVersionUID = 1L;

    public AlgorithmFailed(String message, String requestId, String field) {
      super(ErrorCode.ALGORITHM_FAILED, message, requestId, field);
    }
  }

  /** The request took longer than allowed: the executable's --timeout-s, or the host's deadline. */
  public static class Timeout extends WardenException {
    private static final long serialVersionUID = 1L;

    public Timeout(String message, String requestId, String field) {
      super(ErrorCode.TIMEOUT, message, requestId, field);
    }

    protected Timeout(String message, Throwable cause) {
      super(ErrorCode.TIMEOUT, message, cause);
    }
  }

  /** A fault of the executable or its installation (e.g. two algorithms claiming one name). */
  public static class Internal extends WardenException {
    private static final long serialVersionUID = 1L;

    public Internal(String message, String requestId, String field) {
      super(ErrorCode.INTERNAL, message, requestId, field);
    }

    protected Internal(String message, Throwable cause) {
      super(ErrorCode.INTERNAL, message, cause);
    }
  }

  /**
   * The state does not fit the request: another algorithm's, fitted with other params, or of a
   * state version this executable does not read. Resending does not help: fit again, or send the
   * params the state was fitted with.
   */
  public static class IncompatibleState extends WardenException {
    private static final long serialVersionUID = 1L;

    public IncompatibleState(String message, String requestId, String field) {
      super(ErrorCode.INCOMPATIBLE_STATE, message, requestId, field);
    }
  }

  /**
   * The request named a state (by sha256, or a stored model) that the process does not hold: a
   * restarted or other worker, or one that evicted it. Resend the state itself; {@link
   * SeriesStream} does so on its own.
   */
  public static class StateNotFound extends WardenException {
    private static final long serialVersionUID = 1L;

    public StateNotFound(String message, String requestId, String field) {
      super(ErrorCode.STATE_NOT_FOUND, message, requestId, field);
    }
  }

  /** Marker for failures the host saw itself rather than read from a response. */
  public interface HostFailure {}

  /** The host's deadline passed; the process serving the request was killed (and replaced). */
  public static final class DeadlineExceeded extends Timeout implements HostFailure {
    private static final long serialVersionUID = 1L;

    public DeadlineExceeded(String message) {
      super(message, null);
    }
  }

  /** The process died, or its output broke the protocol, before a full response arrived. */
  public static final class WorkerDied extends Internal implements HostFailure {
    private static final long serialVersionUID = 1L;

    public WorkerDied(String message, Throwable cause) {
      super(message, cause);
    }
  }

  /** The executable could not be started at all (wrong command, missing binary). */
  public static final class CannotStart extends Internal implements HostFailure {
    private static final long serialVersionUID = 1L;

    public CannotStart(String message, Throwable cause) {
      super(message, cause);
    }
  }

  /** The pool was closed before or while the call waited for a worker. */
  public static final class PoolClosed extends Internal implements HostFailure {
    private static final long serialVersionUID = 1L;

    public PoolClosed(String message) {
      super(message, null);
    }
  }
}
