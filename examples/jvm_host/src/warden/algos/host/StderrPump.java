package warden.algos.host;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.function.Consumer;

/**
 * Drains a child's stderr on a daemon thread: an undrained pipe would stall the child once it
 * fills. Keeps the last lines so that a failure report can say why a process died.
 */
final class StderrPump {
  private static final int KEPT_LINES = 20;

  private final Deque<String> tail = new ArrayDeque<>();
  private final Thread thread;

  private StderrPump(Process process, Consumer<String> sink) {
    thread =
        new Thread(
            () -> {
              try (BufferedReader reader =
                  new BufferedReader(
                      new InputStreamReader(process.getErrorStream(), StandardCharsets.UTF_8))) {
                String line;
                while ((line = reader.readLine()) != null) {
                  synchronized (tail) {
                    if (tail.size() == KEPT_LINES) {
                      tail.removeFirst();
                    }
                    tail.addLast(line);
                  }
                  sink.accept(line);
                }
              } catch (IOException ignored) {
                // the process is gone; what was read is kept
              }
            },
            "warden-stderr-" + process.pid());
    thread.setDaemon(true);
    thread.start();
  }

  static StderrPump start(Process process, Consumer<String> sink) {
    return new StderrPump(process, sink);
  }

  /** The last lines the process wrote, waiting briefly for the pipe to close after a death. */
  String tail() {
    try {
      thread.join(200);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    synchronized (tail) {
      return String.join("\n", tail);
    }
  }
}
