package warden.algos.host;

import java.util.concurrent.atomic.AtomicLong;

/**
 * One serve process, as long as it lives: its pid and a number no other process started by this
 * JVM gets (pids are reused). A serve process's state cache belongs to it alone, so a state named
 * by sha256 is only worth sending to the worker of this id that returned it; a replacement worker
 * has another id and is sent the state itself.
 */
public record WorkerId(long pid, long serial) {
  private static final AtomicLong SERIALS = new AtomicLong();

  static WorkerId next(long pid) {
    return new WorkerId(pid, SERIALS.incrementAndGet());
  }

  @Override
  public String toString() {
    return "worker " + pid + "#" + serial;
  }
}
