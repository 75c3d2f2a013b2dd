package warden.algos.host;

import java.io.IOException;
import java.io.OutputStream;
import java.time.Duration;
import java.util.Arrays;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Function;
import warden.algos.thrift.Request;
import warden.algos.thrift.Response;

/**
 * One process per request ({@code warden-algos run}): the simplest contract and the most robust
 * (nothing survives a request), at the price of the interpreter's start-up on every call. See
 * {@link WorkerPool} for the low-latency path.
 */
public final class OneShotInvoker implements Route {
  private final Executable executable;

  public OneShotInvoker(Executable executable) {
    this.executable = executable;
  }

  @Override
  public WireFormat format() {
    return executable.format();
  }

  /** One process for the request, which is built for no worker: a one-shot process holds nothing. */
  @Override
  public Served send(WorkerId preferred, Function<WorkerId, byte[]> request, Duration deadline) {
    return new Served(invokeRaw(request.apply(null), deadline), null);
  }

  /**
   * The response bytes, in the executable's format, for one request's bytes: the bare document,
   * byte for byte what a serve frame carries and what the shared vectors store.
   */
  public byte[] invokeRaw(byte[] request, Duration deadline) {
    long deadlineNanos = System.nanoTime() + deadline.toNanos();
    Process process = executable.start("run");
    StderrPump stderr = StderrPump.start(process, executable.stderrLines());
    AtomicBoolean expired = new AtomicBoolean();
    Deadlines.Armed killer =
        Deadlines.at(
            deadlineNanos,
            () -> {
              expired.set(true);
              process.destroyForcibly();
            });
    try {
      IOException writeFailure = null;
      try (OutputStream stdin = process.getOutputStream()) {
        stdin.write(request);
      } catch (IOException e) {
        writeFailure = e; // the process stopped reading; what it answered still counts
      }
      byte[] response = process.getInputStream().readAllBytes();
      int exit = process.waitFor();
      killer.disarm();
      if (expired.get()) {
        throw new WardenException.DeadlineExceeded(
            "no response within " + deadline.toMillis() + " ms; the process was killed");
      }
      if (exit != 0 || response.length == 0) {
        throw new WardenException.WorkerDied(
            "the process exited with status " + exit + " and " + response.length
                + " response bytes; stderr:\n" + stderr.tail(),
            writeFailure);
      }
      return withoutTerminator(response);
    } catch (IOException e) {
      if (expired.get()) {
        throw new WardenException.DeadlineExceeded(
            "no response within " + deadline.toMillis() + " ms; the process was killed");
      }
      throw new WardenException.WorkerDied("reading the response failed; stderr:\n" + stderr.tail(), e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new WardenException.WorkerDied("interrupted while waiting for the process", e);
    } finally {
      killer.disarm();
      process.destroyForcibly();
    }
  }

  /**
   * {@code run} ends a JSON answer with one newline, so that on a terminal the next line starts
   * on its own; it is not part of the document. Dropping exactly that one byte gives the host the
   * same bytes as serve mode and the stored vectors. A Thrift answer has no terminator: its bytes
   * are the message, and a last byte of 0x0A there is data, so it is left alone.
   */
  private byte[] withoutTerminator(byte[] response) {
    if (executable.format() == WireFormat.JSON
        && response.length > 0
        && response[response.length - 1] == '\n') {
      return Arrays.copyOf(response, response.length - 1);
    }
    return response;
  }

  /** A typed call: the successful response, or the exception for its error code. */
  public Response invoke(Request request, Duration deadline) {
    byte[] answer = invokeRaw(executable.format().encode(request), deadline);
    return Responses.decode(executable.format(), answer);
  }
}
