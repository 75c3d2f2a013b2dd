package warden.algos.host;

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.util.concurrent.TimeUnit;

/**
 * One long-lived {@code warden-algos serve} process, used by one caller at a time (the pool
 * guarantees it). A request that misses its deadline kills the process: nothing else can stop an
 * algorithm that does not yield, and a process with an unread answer in its pipe is unusable.
 */
final class ServeWorker {
  private final Process process;
  private final OutputStream stdin;
  private final InputStream stdout;
  private final StderrPump stderr;
  private final WorkerId id;
  private volatile boolean expired;
  private volatile boolean broken;

  private ServeWorker(Executable executable) {
    process = executable.start("serve");
    stdin = new BufferedOutputStream(process.getOutputStream(), 1 << 16);
    stdout = new BufferedInputStream(process.getInputStream(), 1 << 16);
    stderr = StderrPump.start(process, executable.stderrLines());
    id = WorkerId.next(process.pid());
  }

  static ServeWorker start(Executable executable) {
    return new ServeWorker(executable);
  }

  long pid() {
    return process.pid();
  }

  /** Which process this is, for as long as it lives (what its state cache belongs to). */
  WorkerId id() {
    return id;
  }

  /** False once the process died or a call failed on it: it must be replaced, not reused. */
  boolean usable() {
    return !broken && process.isAlive();
  }

  byte[] call(byte[] body, long deadlineNanos, long deadlineMillisForMessage) {
    expired = false;
    Deadlines.Armed killer =
        Deadlines.at(
            deadlineNanos,
            () -> {
              expired = true;
              broken = true;
              process.destroyForcibly();
            });
    try {
      Framing.writeFrame(stdin, body);
      return Framing.readFrame(stdout);
    } catch (IOException e) {
      broken = true;
      if (expired) {
        throw new WardenException.DeadlineExceeded(
            "no response within " + deadlineMillisForMessage + " ms; worker " + pid()
                + " was killed and is being replaced");
      }
      throw new WardenException.WorkerDied(describeDeath(), e);
    } finally {
      killer.disarm();
    }
  }

  private String describeDeath() {
    String status;
    try {
      status =
          process.waitFor(1, TimeUnit.SECONDS)
              ? "exited with status " + process.exitValue()
              : "stopped answering";
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      status = "state unknown";
    }
    return "worker " + pid() + " " + status + " before answering; stderr:\n" + stderr.tail();
  }

  /** Ends the process the polite way (end of stdin), then the hard way. */
  void close(long graceMillis) {
    broken = true;
    try {
      stdin.close();
      if (!process.waitFor(graceMillis, TimeUnit.MILLISECONDS)) {
        process.destroyForcibly();
      }
    } catch (IOException e) {
      process.destroyForcibly();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      process.destroyForcibly();
    }
  }

  void kill() {
    broken = true;
    process.destroyForcibly();
  }
}
