package warden.algos.host;

import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.locks.LockSupport;

/**
 * One watchdog thread for every deadline in the JVM. A call arms an entry that kills its process
 * if the answer is late, and disarms it when the answer arrives: a blocking pipe read cannot be
 * interrupted in Java, but killing the process ends it with end-of-stream, which the caller sees.
 *
 * <p>Arming costs a set insertion and no thread wake-up in the common case: the watchdog sleeps
 * until the earliest deadline it knows of, and is only woken by an entry that is due earlier. With
 * one deadline for all calls that happens once per idle-to-busy transition, not per call, so a
 * sub-millisecond round trip does not pay for waking a timer thread twice.
 */
final class Deadlines {
  /** The watchdog's planned wake-up while it is scanning: any arm must wake it again. */
  private static final long SCANNING = Long.MIN_VALUE;

  private static final Set<Armed> ARMED = ConcurrentHashMap.newKeySet();
  private static volatile long plannedWake = Long.MAX_VALUE;
  private static final Thread WATCHDOG = startWatchdog();

  private Deadlines() {}

  /** A pending deadline; {@link #disarm()} it when the call is over, whatever its outcome. */
  static final class Armed {
    private final long deadlineNanos;
    private final Runnable onExpiry;

    private Armed(long deadlineNanos, Runnable onExpiry) {
      this.deadlineNanos = deadlineNanos;
      this.onExpiry = onExpiry;
    }

    void disarm() {
      ARMED.remove(this);
    }
  }

  static Armed at(long deadlineNanos, Runnable onExpiry) {
    Armed armed = new Armed(deadlineNanos, onExpiry);
    ARMED.add(armed);
    long wake = plannedWake;
    if (wake == SCANNING || wake == Long.MAX_VALUE || deadlineNanos - wake < 0) {
      LockSupport.unpark(WATCHDOG);
    }
    return armed;
  }

  private static Thread startWatchdog() {
    Thread thread = new Thread(Deadlines::watch, "warden-deadlines");
    thread.setDaemon(true);
    thread.start();
    return thread;
  }

  private static void watch() {
    while (true) {
      plannedWake = SCANNING;
      long now = System.nanoTime();
      long next = Long.MAX_VALUE;
      for (Armed armed : ARMED) {
        if (armed.deadlineNanos - now <= 0) {
          if (ARMED.remove(armed)) {
            armed.onExpiry.run();
          }
        } else if (next == Long.MAX_VALUE || armed.deadlineNanos - next < 0) {
          next = armed.deadlineNanos;
        }
      }
      plannedWake = next;
      if (next == Long.MAX_VALUE) {
        LockSupport.park(); // an arm (or a spurious wake-up) starts a new scan
      } else {
        LockSupport.parkNanos(next - System.nanoTime());
      }
    }
  }
}
