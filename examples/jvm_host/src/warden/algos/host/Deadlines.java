package warden.algos.host;

import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;

/**
 * One timer thread for every deadline in the JVM. A call arms a task that kills the process if the
 * answer is late, and cancels it when the answer arrives: a blocking read cannot be interrupted in
 * Java, but killing the process ends it with end-of-stream, which is exactly what the caller sees.
 */
final class Deadlines {
  private static final ScheduledThreadPoolExecutor TIMER = createTimer();

  private Deadlines() {}

  private static ScheduledThreadPoolExecutor createTimer() {
    ScheduledThreadPoolExecutor timer =
        new ScheduledThreadPoolExecutor(
            1,
            runnable -> {
              Thread thread = new Thread(runnable, "warden-deadlines");
              thread.setDaemon(true);
              return thread;
            });
    timer.setRemoveOnCancelPolicy(true);
    return timer;
  }

  static ScheduledFuture<?> at(long deadlineNanos, Runnable onExpiry) {
    return TIMER.schedule(onExpiry, deadlineNanos - System.nanoTime(), TimeUnit.NANOSECONDS);
  }
}
