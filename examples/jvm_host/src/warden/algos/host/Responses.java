package warden.algos.host;

import org.apache.thrift.TException;
import warden.algos.thrift.Response;

/** Turns response bytes into a successful {@link Response} or the typed exception for its code. */
final class Responses {
  private Responses() {}

  static Response decode(WireFormat format, byte[] bytes) {
    Response response;
    try {
      response = format.decode(new Response(), bytes);
    } catch (TException e) {
      throw new WardenException.WorkerDied(
          "the executable answered " + bytes.length + " bytes that are not a " + format.cliName
              + " Response",
          e);
    }
    return WardenException.raiseIfError(response);
  }
}
