package warden.algos.host;

import java.io.IOException;
import java.math.BigDecimal;
import java.time.Duration;
import java.util.concurrent.ThreadLocalRandom;
import java.util.function.Consumer;

/**
 * Retries what fails with an {@link IOException} (a cut connection, a short read, a 5xx, a corrupt
 * transfer), waiting {@code base * 2^(n-1)} before attempt {@code n+1}, scaled by a random factor
 * in [0.5, 1] so that the nodes of a fleet, all pulling right after a promote, do not retry in
 * lock step. A {@link PullException} is final (an expired URL stays expired) and passes through.
 */
final class Backoff {
  /** An attempt; its number (1, 2, ...) is passed in. */
  interface Attempt<T> {
    T run(int number) throws IOException, PullException, InterruptedException;
  }

  /** The value and how many attempts it took. */
  record Attempted<T>(T value, int attempts) {}

  private final int retries;
  private final Duration base;
  private final Consumer<String> log;

  Backoff(int retries, Duration base, Consumer<String> log) {
    if (retries < 0) {
      throw new IllegalArgumentException("retries must not be negative");
    }
    this.retries = retries;
    this.base = base;
    this.log = log;
  }

  /** Up to {@code retries + 1} attempts at downloading {@code what}. */
  <T> Attempted<T> run(String what, Attempt<T> attempt) throws PullException, InterruptedException {
    for (int number = 1; ; number++) {
      try {
        return new Attempted<>(attempt.run(number), number);
      } catch (IOException e) {
        if (number > retries) {
          throw new PullException(
              "could not download "
                  + what
                  + " after "
                  + number
                  + " attempts: "
                  + describe(e)
                  + "; the installed release was kept",
              e);
        }
        long millis = delayMillis(number);
        log.accept(
            "download attempt "
                + number
                + " failed ("
                + describe(e)
                + "); retrying in "
                + seconds(Duration.ofMillis(millis))
                + " s");
        Thread.sleep(millis);
      }
    }
  }

  private long delayMillis(int number) {
    double full = base.toMillis() * Math.pow(2, Math.min(number - 1, 20));
    return Math.round(full * (0.5 + 0.5 * ThreadLocalRandom.current().nextDouble()));
  }

  static String describe(Throwable error) {
    String message = error.getMessage();
    if (message == null || message.isBlank()) {
      return error.getClass().getSimpleName();
    }
    return error instanceof PullException || error.getClass() == IOException.class
        ? message
        : error.getClass().getSimpleName() + ": " + message;
  }

  /** A duration as seconds for messages: "0.5", "30". */
  static String seconds(Duration duration) {
    return BigDecimal.valueOf(duration.toMillis(), 3).stripTrailingZeros().toPlainString();
  }
}
